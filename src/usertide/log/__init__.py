"""The durable event log: segment files, group commit, and the loader into the store."""

from usertide.log.committer import GroupCommitter, LogUnavailable
from usertide.log.loader import Loader, open_segments
from usertide.log.segments import LogCorrupted, SegmentLog

__all__ = [
    "GroupCommitter",
    "Loader",
    "LogCorrupted",
    "LogUnavailable",
    "SegmentLog",
    "open_segments",
]

"""The durable event log's write path (group commit)."""

from usertide.log.committer import GroupCommitter, LogUnavailable

__all__ = ["GroupCommitter", "LogUnavailable"]

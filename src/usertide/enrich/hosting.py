"""Whether an address belongs to a hosting or cloud provider (a data-centre network).

People browse from consumer and mobile networks; scripts run in data centres. The
organisation that announces an address (``Geo.as_org``, from the ASN data the geo
enricher reads) names the provider: this matches it against the large hosting and cloud
providers and the words that such organisations use in their names. A residential proxy
is not caught here (it is a consumer address by construction).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

_PROVIDERS: Final = (
    "amazon", "aws", "digitalocean", "hetzner", "ovh", "google-cloud", "google cloud",
    "linode", "akamai connected cloud", "vultr", "choopa", "alibaba", "aliyun", "tencent",
    "oracle", "scaleway", "leaseweb", "contabo", "m247", "datacamp", "hostinger",
    "godaddy", "rackspace", "softlayer", "ionos", "upcloud", "cloudflare", "fastly",
    "azure", "microsoft-corp-msn", "hurricane electric", "psychz", "quadranet", "colocrossing",
)  # fmt: skip
_WORDS: Final = r"hosting|host\b|server|data ?cent(?:er|re)|cloud|vps|colo(?:cation)?\b"
_PATTERN: Final = re.compile("|".join([*(re.escape(p) for p in _PROVIDERS), _WORDS]), re.IGNORECASE)


@lru_cache(maxsize=4096)
def is_hosting(as_org: str | None) -> bool:
    """``True`` when the announcing organisation is a hosting or cloud provider."""
    return as_org is not None and _PATTERN.search(as_org) is not None

"""Enrichment: derived context (device, geo) added to events before they are stored."""

from usertide.enrich.base import Enricher
from usertide.enrich.geo import PACKAGED_CITY_DB, GeoIPEnricher, load_packaged_asn_data
from usertide.enrich.ip import IpPolicy, IpPrivacyEnricher, ip_prefix, parse_ip, truncate_ip
from usertide.enrich.pipeline import EnrichmentPipeline, build_enrichers
from usertide.enrich.useragent import UA_RESOLVER, UserAgentEnricher, parse_user_agent

__all__ = [
    "PACKAGED_CITY_DB",
    "UA_RESOLVER",
    "Enricher",
    "EnrichmentPipeline",
    "GeoIPEnricher",
    "IpPolicy",
    "IpPrivacyEnricher",
    "UserAgentEnricher",
    "build_enrichers",
    "ip_prefix",
    "load_packaged_asn_data",
    "parse_ip",
    "parse_user_agent",
    "truncate_ip",
]

"""The versioned key layout, written down once (see data/README.md "Store layout").

    {ns}:version                 current published version id (the one pointer flipped atomically)
    {ns}:versions                JSON list of known versions with state (staging/live/superseded)
    {ns}:v:{ver}:meta            JSON: counts, item ids count, created_at
    {ns}:v:{ver}:items           newline-joined external item ids, index order
    {ns}:v:{ver}:c:{user_id}     candidate blob (codec.encode_candidates)
    {ns}:v:{ver}:h:{user_id}     history blob (codec.encode_indices)
    {ns}:s:{user_id}             session list, one "item\\tevent\\tts" string per event, TTL on inactivity
    {ns}:lock:{name}             job lock (SET NX PX)
    {ns}:jobs                    job history list (JSON per run, newest last, capped)
    {ns}:featlog                 sampled served feature vectors (JSON per row, capped)
    {ns}:log:{stream}            append-only log (Redis Stream; a table in the embedded file): stream is
                                 `events` (accepted events) or `impressions` (served lists), capped
    {ns}:log:{stream}:acked      id of the newest entry every reader (the lake ingest) has committed
    {ns}:forget                  pending forget requests (sha256 of the user id), applied to the lake by ingest
    {ns}:v:{ver}:upd             id of the newest lake event the micro-batch update folded into this version
"""

from __future__ import annotations

from dataclasses import dataclass

LAYOUT_VERSION = 1


@dataclass(frozen=True)
class Keys:
    ns: str = "recsys"

    @property
    def pointer(self) -> str:
        return f"{self.ns}:version"

    @property
    def versions(self) -> str:
        return f"{self.ns}:versions"

    def version_prefix(self, version: str) -> str:
        return f"{self.ns}:v:{version}:"

    def meta(self, version: str) -> str:
        return f"{self.ns}:v:{version}:meta"

    def items(self, version: str) -> str:
        return f"{self.ns}:v:{version}:items"

    def candidates(self, version: str, user_id: str) -> str:
        return f"{self.ns}:v:{version}:c:{user_id}"

    def history(self, version: str, user_id: str) -> str:
        return f"{self.ns}:v:{version}:h:{user_id}"

    def session(self, user_id: str) -> str:
        return f"{self.ns}:s:{user_id}"

    def lock(self, name: str) -> str:
        return f"{self.ns}:lock:{name}"

    @property
    def jobs(self) -> str:
        return f"{self.ns}:jobs"

    @property
    def feature_log(self) -> str:
        return f"{self.ns}:featlog"

    def log(self, stream: str) -> str:
        return f"{self.ns}:log:{stream}"

    def log_acked(self, stream: str) -> str:
        return f"{self.ns}:log:{stream}:acked"

    @property
    def forget(self) -> str:
        return f"{self.ns}:forget"

    def updated_through(self, version: str) -> str:
        return f"{self.ns}:v:{version}:upd"

"""The versioned key layout, written down once (see data/README.md "Store layout").

    {ns}:version                 current published version id (the one pointer flipped atomically)
    {ns}:versions                JSON list of known versions with state (staging/live/superseded)
    {ns}:v:{ver}:meta            JSON: counts, item ids count, created_at
    {ns}:v:{ver}:items           newline-joined external item ids, index order
    {ns}:v:{ver}:u:{u<user>}     the user's value (codec.encode_user): candidates, ALS user vector, history
    {ns}:s:{u<user>}             session list, one "item\\tevent\\tts" string per event, TTL on inactivity
    {ns}:lock:{name}             job lock (SET NX PX)
    {ns}:jobs                    job history list (JSON per run, newest last, capped)
    {ns}:featlog                 sampled served feature vectors (JSON per row, capped)
    {ns}:log:{stream}            append-only log (Redis Stream; a table in the embedded file): stream is
                                 `events` (accepted events) or `impressions` (served lists), capped
    {ns}:log:{stream}:acked      id of the newest entry every reader (the lake ingest) has committed
    {ns}:forget                  pending forget requests (sha256 of the user id), applied to the lake by ingest
    {ns}:v:{ver}:upd             id of the newest lake event the micro-batch update folded into this version
    {ns}:cat:{catalogue}:ver     catalogue version: an integer bumped by every catalogue write (read per request)
    {ns}:cat:{catalogue}:data    the whole item catalogue (codec.encode_catalogue), written with `ver` in one MSET
    {ns}:experiments             JSON object: every experiment's definition by name (running and stopped)

One key per user and version (layout 3): Redis spends ~60-70 bytes of dict entry, key string and
object header per key, so the candidates and the history share one value instead of two keys.

Every key one request reads for one user carries a Redis Cluster hash tag made of `u` and the user id
(`{ualice}`): on a cluster they share one slot, so the serving read stays one round trip to one node.
The tag is the text between the first `{` and the next `}`; namespaces and versions never contain
braces, so the first `{` of a user key is always the one written here, and the tag is the same for all
of a user's keys even when the user id contains braces (the `u` keeps it non-empty when the id starts
with `}`: an empty tag would hash the whole key). A log is one key (one slot): its appends and reads
never span slots.
"""

from __future__ import annotations

from dataclasses import dataclass

# 2: user keys carry a hash tag (Redis Cluster). 3: one value per user (candidates, float16 user vector
# instead of scores, history; bit-packed indices). A reader refuses a version of another layout
# (`CandidateVersions.check_layout`): a refresh writes the current one.
LAYOUT_VERSION = 3


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

    def user(self, version: str, user_id: str) -> str:
        return f"{self.ns}:v:{version}:u:{{u{user_id}}}"

    def session(self, user_id: str) -> str:
        return f"{self.ns}:s:{{u{user_id}}}"

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

    # The catalogue is versioned apart from candidate versions; both keys share one hash tag so that its
    # data and counter are written together in one MSET, also on a cluster.
    @property
    def catalogue_version(self) -> str:
        return f"{self.ns}:cat:{{catalogue}}:ver"

    @property
    def catalogue_data(self) -> str:
        return f"{self.ns}:cat:{{catalogue}}:data"
    @property
    def experiments(self) -> str:
        return f"{self.ns}:experiments"

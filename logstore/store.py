"""A store directory: format version, topic registry, lazily opened partition logs.

Layout (Kafka's names where Kafka has one)::

    <store>/
      logstore.json                       format version and store-level topic defaults
      topics.json                         topic registry: partitions, config, topic id
      recovery-point-offset-checkpoint    Kafka checkpoint text: <topic> <partition> <offset>
      log-start-offset-checkpoint         same format, partitions whose start passed their first segment
      .lock                               flock guarding the files above
      <topic>-<partition>/                segments: 00000000000000000000.log .index .timeindex,
                                          partition.metadata, and logstore's .logstore.* lock files

Several processes may open the same store at once (see :mod:`logstore.storage.log`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import resource
import shlex
import shutil
import stat
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import FSYNC_PRESETS, LONG_MAX, TOPIC_KEYS, TopicConfig, validate_topic_config
from .errors import (
    CorruptDataError,
    InvalidConfigError,
    InvalidTopicError,
    LogClosedError,
    LogStoreError,
    StorageError,
    StoreFormatError,
    StoreLockedError,
    StoreNotFoundError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
    UnsafeStoreError,
    did_you_mean,
)
from .records.batch import RecordColumns
from .retention import RETENTION_CHECK_INTERVAL_MS, choose_segments
from .storage.files import (
    DIR_MODE,
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    TOPIC_NAME,
    atomic_write,
    fsync_dir,
    partition_dir_name,
    read_checkpoint,
    write_checkpoint,
)
from .storage.locks import FileLock
from .storage.log import (
    CLEAN_FILE,
    LOCK_FILE,
    AppendResult,
    DeletionResult,
    PartitionLog,
    Problem,
    advance_layout_generation,
)
from .storage.segment import LogSegment
from .types import OffsetAndTimestamp, TopicPartition

FORMAT_VERSION = 1
META_FILE = "logstore.json"
TOPICS_FILE = "topics.json"
STORE_LOCK = ".lock"
MAX_PARTITIONS = 2**31 - 1  # partition numbers are Kafka's int32: 0..2**31-2
NAME_MAX = 255  # longest file name (bytes) on Linux and macOS file systems
TOPIC_RULE = "1-249 characters of a-z A-Z 0-9 . _ - (not '.' or '..'), Kafka's rule"
_PARTITION_DIR = re.compile(r"[a-zA-Z0-9._-]{1,249}-[0-9]+")


def _topic_name_problem(name: object) -> str | None:
    """Why ``name`` is not a legal topic name, or None when it is."""
    if not isinstance(name, str):
        return f"a topic name must be a str, not {type(name).__name__}"
    shown = repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
    if not name:
        return "the topic name is empty"
    if name in (".", ".."):
        return f"topic name {shown} is reserved"
    if len(name) > 249:
        return f"topic name {shown} is {len(name)} characters long"
    bad = next((c for c in name if not TOPIC_NAME.fullmatch(c)), None)
    if bad is not None:
        return f"topic name {shown} contains {bad!r}"
    return None


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _deleting_name(d: str) -> str:
    """Where a partition directory goes while it is deleted: ``<dir>.<uuid>-delete`` (Kafka's
    convention), the name cut short where needed so that it stays a legal file name."""
    head, base = os.path.split(d)
    return os.path.join(head, f"{base[: NAME_MAX - 40]}.{uuid.uuid4().hex}-delete")


def _tell_readers_moved(directory: str) -> None:
    """Advance the layout generation of a partition directory left over from a deletion a crash
    interrupted (moved away, about to be removed), in case the crash came before the deletion told
    the logs other handles or processes hold open on it. Best effort: a lock file that is missing,
    a link or unwritable is passed over (such a log's next open by name is checked anyway)."""
    if os.path.islink(directory):
        return
    try:
        fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        advance_layout_generation(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_tree(path: str) -> None:
    """Remove a directory being deleted; a symbolic link is unlinked, never followed."""
    if os.path.islink(path):
        try:
            os.unlink(path)
        except OSError:
            pass
    else:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class RepairResult:
    """What :meth:`LogStore.recover` did to one partition (or, in a dry run, found).

    ``problems`` are what verify found before; ``bytes_cut`` the torn or damaged bytes removed;
    ``indexes_rebuilt`` the segments whose indexes were made again from the log; ``error`` the
    damage left in place (a damaged batch in fsynced data without ``truncate_damaged``) or the
    partition being open elsewhere (``locked``); ``deleted_segments`` and ``records_lost`` what a
    cut took with it (the log end moved back by that many records)."""

    topic: str
    partition: int
    segments: int
    indexes_rebuilt: int
    bytes_cut: int
    log_end_offset: int
    problems: tuple[str, ...] = ()
    removed_files: tuple[str, ...] = ()
    error: str | None = None
    dry_run: bool = False
    deleted_segments: tuple[str, ...] = ()
    records_lost: int = 0
    locked: bool = False


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as :meth:`LogStore.describe_topic` sees it. Offsets are record numbers."""

    partition: int
    start_offset: int
    end_offset: int
    segments: int
    size_bytes: int


@dataclass(frozen=True)
class TopicInfo:
    """A topic: its partition count, its own config (``config``) and the effective one."""

    name: str
    partition_count: int
    config: dict[str, Any]
    effective_config: TopicConfig
    topic_id: str
    partitions: list[PartitionInfo] = field(default_factory=list)


class _HandleCache:
    """Bounds the segments holding open descriptors and maps across the store (LRU)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lru: OrderedDict[int, LogSegment] = OrderedDict()
        self._lock = threading.Lock()

    def touch(self, seg: LogSegment) -> None:
        """Note that ``seg`` opened a handle; close the least recently used segments over the limit.

        Called while the caller may hold ``seg``'s own lock, so eviction never waits for another
        segment's lock (that ordering deadlocked two readers): a busy segment stays open for now.
        """
        evict: list[LogSegment] = []
        with self._lock:
            self._lru[id(seg)] = seg
            self._lru.move_to_end(id(seg))
            while len(self._lru) - len(evict) > self.limit:
                _, old = self._lru.popitem(last=False)
                if old is not seg:
                    evict.append(old)
        busy = [old for old in evict if not old.try_release()]
        if busy:
            with self._lock:
                for old in busy:
                    self._lru[id(old)] = old


# Descriptors: a cached segment holds up to five (its .log, each index file, and each index map,
# which keeps a duplicate of its file's descriptor); an open partition log two for as long as it
# is open (.logstore.lock and .logstore.open).
FDS_PER_SEGMENT = 5
FDS_PER_PARTITION = 2


def _nofile_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 65536 if soft == resource.RLIM_INFINITY else soft


def _max_map_count() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65530  # Linux's default


def _default_handle_limit() -> int:
    """Segments the handle cache keeps open: their descriptors stay under a third of
    RLIMIT_NOFILE, and their index maps (two each) under half of vm.max_map_count."""
    return max(2, min(_nofile_limit() // (3 * FDS_PER_SEGMENT), _max_map_count() // 4))


def _default_partition_limit(segments: int) -> int:
    """Partition logs kept open at once: with the segment cache full, the store stays under
    RLIMIT_NOFILE with an eighth of it (at least 24) left for everything else in the process."""
    soft = _nofile_limit()
    return max(4, (soft - max(24, soft // 8) - segments * FDS_PER_SEGMENT) // FDS_PER_PARTITION)


class LogStore:
    """A logstore directory, opened in this process. A context manager; ``close()`` when done.

    Args:
        path: the store directory. Created (with parents) when missing and ``create`` is true.
        create: create a new store when ``path`` holds none (else StoreFormatError).
        fsync: store-level durability default for topics that do not set ``flush.messages`` /
            ``flush.ms`` themselves: ``"always"`` (fsync before an append returns; the default),
            ``"interval"`` (at least every second) or ``"never"`` (left to the OS). See README.
            Saved in the store when it is created; passing it on a later open overrides it for that
            process.
        config: further store-level topic defaults under Kafka's names (saved on creation).
        clock: seconds since the epoch (injectable for tests).
        lock_timeout: seconds to wait for another process's lock before StoreLockedError.
        read_only: look without changing any file: no store creation, no recovery or torn-tail
            cut, no leftover clean-up, no clean-shutdown markers; every change raises
            LogClosedError. (A dry run uses this.)
        retention_check_interval_ms: run :meth:`apply_retention` in a background thread this
            often (Kafka's ``log.retention.check.interval.ms``, 300000 = 5 minutes, is a good
            value for a long-lived process); None (the default) leaves retention to the caller or
            the ``logstore retention run`` job. Errors of a background pass are kept in
            ``retention_errors`` (the library never prints).

    Raises StoreFormatError for a directory written by a newer logstore or one that is not a store,
    InvalidConfigError for a bad default.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        fsync: str | None = None,
        config: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        lock_timeout: float | None = 60.0,
        max_open_segments: int | None = None,
        retention_check_interval_ms: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self._clock = clock
        self._lock_timeout = lock_timeout
        if fsync is not None and fsync not in FSYNC_PRESETS:
            raise InvalidConfigError(
                f"fsync={fsync!r} is not a durability policy.", f"Use one of: {', '.join(FSYNC_PRESETS)}."
            )
        self.read_only = read_only
        self._check_root_mode()
        self._topics_cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._meta = self._open_or_create(create and not read_only, fsync, config)
        self._topics()  # a missing or damaged topic registry is refused here, before any file is made
        self._process_defaults = FSYNC_PRESETS[fsync] if fsync is not None else {}
        self._store_lock = FileLock(os.path.join(self.path, STORE_LOCK), lock_timeout, f"store {self.path}")
        if not read_only:
            self._remove_deleted_dirs()
        self._lock = threading.RLock()
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._repairing: set[TopicPartition] = set()  # opened by recover(truncate_damaged=True)
        self._handles = _HandleCache(max_open_segments or _default_handle_limit())
        # Partition logs open at once (see _evict_idle_logs), and the parsed checkpoint files.
        self._max_open_logs = _default_partition_limit(self._handles.limit)
        self._checkpoints: dict[str, tuple[int, int, dict[tuple[str, int], int]]] = {}
        self._checkpoints_lock = threading.Lock()
        self._closed = False
        self._flusher: threading.Thread | None = None
        self._flusher_stop = threading.Event()
        self.retention_errors: list[Exception] = []
        self._retention_thread: threading.Thread | None = None
        if retention_check_interval_ms is not None:
            if (
                isinstance(retention_check_interval_ms, bool)
                or not isinstance(retention_check_interval_ms, int)
                or retention_check_interval_ms <= 0
            ):
                raise InvalidConfigError(
                    f"retention_check_interval_ms={retention_check_interval_ms!r} must be a whole number of ms > 0.",
                    f"Kafka's default is {RETENTION_CHECK_INTERVAL_MS} (5 minutes).",
                )
            self._start_retention(retention_check_interval_ms / 1000.0)

    @property
    def format_version(self) -> int:
        """The on-disk format version of this store (``logstore.json``)."""
        return int(self._meta.get("format_version", FORMAT_VERSION))

    @classmethod
    def open(cls, path: str | os.PathLike[str], **kwargs: Any) -> LogStore:
        """Same as ``LogStore(path, **kwargs)``."""
        return cls(path, **kwargs)

    # --- the store directory ------------------------------------------------------------------------

    def _open_or_create(self, create: bool, fsync: str | None, config: Mapping[str, Any] | None) -> dict[str, Any]:
        meta_path = os.path.join(self.path, META_FILE)
        restore = (
            f"Nothing was changed. Restore {META_FILE} from a copy, or write one with the default settings: "
            f"echo '{{\"format_version\": {FORMAT_VERSION}}}' > {shlex.quote(meta_path)}"
        )
        try:
            with open(meta_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = None
        if raw is not None:
            return self._check_meta(meta_path, raw, restore)
        # No metadata. A directory with a store's files in it lost its logstore.json: never make a
        # new store over them (a topic created then would replace the old data).
        stray: list[str] = []
        if os.path.isdir(self.path):
            for n in sorted(os.listdir(self.path)):
                p = os.path.join(self.path, n)
                if not (n.startswith(".") and os.path.isfile(p) and not os.path.islink(p)):
                    stray.append(n)  # dot-files (.lock, .gitkeep) aside; a hidden topic's ".x-0" counts
        known = {TOPICS_FILE, RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, "groups"}
        looks = [n for n in stray if n in known or _PARTITION_DIR.fullmatch(n)]
        if looks:
            more = ", ..." if len(looks) > 4 else ""
            raise StoreFormatError(
                f"{self.path} holds a store's files ({', '.join(looks[:4])}{more}) but no {META_FILE}: "
                "its store metadata is missing.",
                restore + ". A new store is never made over existing data.",
            )
        if not create:
            raise StoreNotFoundError(
                f"no logstore store at {self.path}.",
                "Check the path (--dir / LOGSTORE_DIR), or create one: 'logstore topic create NAME' in the CLI, "
                "LogStore(path) in Python.",
            )
        if stray:
            raise StoreFormatError(
                f"{self.path} is not empty and holds no {META_FILE}; refusing to make it a store.",
                "Pick an empty or new directory.",
            )
        defaults = dict(FSYNC_PRESETS[fsync or "always"])
        defaults.update(validate_topic_config(config))
        meta = {
            "format_version": FORMAT_VERSION,
            "created_ms": int(self._clock() * 1000),
            "defaults": defaults,
        }
        missing = []
        d = self.path
        while not os.path.isdir(d) and os.path.dirname(d) != d:
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):  # each level with DIR_MODE (os.makedirs gives parents 0o777 - umask)
            os.makedirs(d, mode=DIR_MODE, exist_ok=True)
        atomic_write(meta_path, (json.dumps(meta, indent=2) + "\n").encode())
        if not os.path.exists(os.path.join(self.path, TOPICS_FILE)):
            atomic_write(os.path.join(self.path, TOPICS_FILE), b'{"version": 1, "topics": {}}\n')
        return meta

    def _check_meta(self, meta_path: str, raw: bytes, restore: str) -> dict[str, Any]:
        """The store metadata in ``raw``, checked: a JSON object with a format version this logstore
        reads and valid topic defaults. Raises StoreFormatError naming the file."""
        try:
            meta = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            raise StoreFormatError(f"store metadata {meta_path} is not valid JSON ({e}).", restore) from None
        if not isinstance(meta, dict):
            raise StoreFormatError(
                f"store metadata {meta_path} holds a JSON {_json_type(meta)}, not an object.", restore
            )
        version = meta.get("format_version")
        valid = isinstance(version, int) and not isinstance(version, bool)
        if valid and version > FORMAT_VERSION:
            raise StoreFormatError(
                f"store {self.path} has format version {version} (in {meta_path}); this logstore reads up to "
                f"{FORMAT_VERSION}.",
                "Upgrade logstore to open it. Nothing was changed.",
            )
        if not valid or version < 1:
            raise StoreFormatError(
                f"store metadata {meta_path} has no valid format_version (found {version!r}).", restore
            )
        defaults = meta.get("defaults", {})
        if not isinstance(defaults, dict):
            raise StoreFormatError(
                f"store metadata {meta_path}: 'defaults' is a JSON {_json_type(defaults)}, not an object of "
                "topic configs.",
                restore,
            )
        try:
            validate_topic_config(defaults)
        except InvalidConfigError as e:
            raise StoreFormatError(
                f"store metadata {meta_path} holds a bad store default: {e.message}", restore
            ) from None
        return meta

    def _check_root_mode(self) -> None:
        """Refuse a world-writable store root (ssh's rule for ~/.ssh): any local user could plant,
        swap or delete the files in it. Parents are not checked (a store under /tmp is fine)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return  # missing: created with DIR_MODE
        if not stat.S_ISDIR(st.st_mode) or not st.st_mode & stat.S_IWOTH:
            return
        mode = f"{stat.S_IMODE(st.st_mode):04o}"
        if st.st_mode & stat.S_ISVTX and not os.path.exists(os.path.join(self.path, META_FILE)):
            raise UnsafeStoreError(
                f"{self.path} is a shared world-writable directory (mode {mode}, like /tmp); it cannot be a "
                "store root.",
                f"Use a directory of its own inside it, e.g. {os.path.join(self.path, 'logstore')}.",
            )
        raise UnsafeStoreError(
            f"store root {self.path} is world-writable (mode {mode}): any local user could plant, replace or "
            "delete its files. Nothing was read or changed.",
            f"Run 'chmod o-w {shlex.quote(self.path)}' and open it again.",
        )

    def _remove_deleted_dirs(self) -> None:
        """Finish topic deletions a crash interrupted: ``<dir>.<uuid>-delete`` directories go."""
        try:
            names = [n for n in os.listdir(self.path) if n.endswith("-delete")]
        except FileNotFoundError:
            return
        for name in names:
            d = os.path.join(self.path, name)
            _tell_readers_moved(d)
            _remove_tree(d)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"store {self.path} is closed.", "Open it again with LogStore(path).")

    def _topics(self) -> dict[str, Any]:
        """The topic registry, re-read when another process replaced it."""
        path = os.path.join(self.path, TOPICS_FILE)
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._topics_cache
            if cached is not None and cached[0] == key:
                return cached[1]
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            self._check_no_partition_dirs(path)
            return {}
        topics = self._parse_topics(path, raw)
        self._topics_cache = (key, topics)
        return topics

    def _check_no_partition_dirs(self, path: str) -> None:
        """A missing topic registry is an empty one only where no partition directory exists; else
        it was lost, and a topic made again would replace its old data: StoreFormatError."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        found = sorted(n for n in names if _PARTITION_DIR.fullmatch(n) and os.path.isdir(os.path.join(self.path, n)))
        if found:
            more = ", ..." if len(found) > 3 else ""
            raise StoreFormatError(
                f"topic registry {path} is missing, but the store holds partition directories "
                f"({', '.join(found[:3])}{more}).",
                f"Restore {TOPICS_FILE} from a copy (it lists each topic's partition count and config). Nothing "
                "was changed: a topic is never made again over existing data.",
            )

    def _parse_topics(self, path: str, raw: bytes) -> dict[str, Any]:
        """The topics of a registry file, checked (shape, legal names, partition counts, configs):
        a damaged registry raises StoreFormatError naming the file, and no path is ever built from a
        name in it that is not a legal topic name."""
        fix = (
            f"Restore {TOPICS_FILE} from a copy (it lists each topic's partition count and config). "
            "Nothing was changed."
        )
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            raise StoreFormatError(f"topic registry {path} is not valid JSON ({e}).", fix) from None
        topics = data.get("topics") if isinstance(data, dict) else None
        if not isinstance(topics, dict):
            raise StoreFormatError(f"topic registry {path} is not a JSON object with a 'topics' object.", fix)
        version = data.get("version", 1)
        if version != 1 or isinstance(version, bool):
            raise StoreFormatError(
                f"topic registry {path} has version {version!r}; this logstore reads version 1.",
                "Upgrade logstore if a newer one wrote it. " + fix,
            )
        for name, entry in topics.items():
            problem = _topic_name_problem(name)
            if problem is not None:
                raise StoreFormatError(
                    f"topic registry {path} lists an illegal topic: {problem}; no path is made from it.", fix
                )
            parts = entry.get("partitions") if isinstance(entry, dict) else None
            if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= MAX_PARTITIONS:
                raise StoreFormatError(
                    f"topic registry {path}: topic '{name}' has no valid partition count (found {parts!r}).", fix
                )
            config = entry.get("config", {})
            if not isinstance(config, dict):
                raise StoreFormatError(
                    f"topic registry {path}: the config of topic '{name}' is a JSON {_json_type(config)}, "
                    "not an object.",
                    fix,
                )
            try:
                validate_topic_config(config)
            except InvalidConfigError as e:
                raise StoreFormatError(
                    f"topic registry {path}: topic '{name}' has a bad config: {e.message}", fix
                ) from None
        return topics

    def _write_topics(self, topics: dict[str, Any]) -> None:
        atomic_write(
            os.path.join(self.path, TOPICS_FILE),
            (json.dumps({"version": 1, "topics": topics}, indent=2, sort_keys=True) + "\n").encode(),
        )
        self._topics_cache = None

    def _topic_entry(self, name: str) -> dict[str, Any]:
        topics = self._topics()
        entry = topics.get(name)
        if entry is None:
            raise UnknownTopicError(name, topics.keys(), self.path)
        return entry

    def _effective_config(self, entry: Mapping[str, Any]) -> TopicConfig:
        return TopicConfig.from_layers(self._meta.get("defaults"), self._process_defaults, entry.get("config"))

    # --- topics -------------------------------------------------------------------------------------

    @staticmethod
    def validate_topic_name(name: str) -> None:
        """Raise InvalidTopicError unless ``name`` is a legal Kafka topic name (see TOPIC_RULE);
        the check is pure: no file is looked at."""
        problem = _topic_name_problem(name)
        if problem is not None:
            raise InvalidTopicError(f"{problem}; not a valid topic name.", f"Use {TOPIC_RULE}.")

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, Any] | None = None,
        *,
        exist_ok: bool = False,
    ) -> TopicInfo:
        """Create a topic of ``partitions`` partitions with per-topic ``config`` (Kafka's names).

        Raises InvalidTopicError for an illegal name (or one colliding with an existing topic on
        '.' versus '_'), InvalidConfigError for a bad config or partition count, TopicExistsError
        when it exists (unless ``exist_ok``, which returns the existing topic).
        """
        self._check_open()
        self.validate_topic_name(name)
        if isinstance(partitions, bool) or not isinstance(partitions, int) or not 1 <= partitions <= MAX_PARTITIONS:
            raise InvalidConfigError(
                f"partitions={partitions!r} for topic '{name}'.", f"Give a whole number in 1..{MAX_PARTITIONS}."
            )
        longest = len(partition_dir_name(name, partitions - 1))
        if longest > NAME_MAX:
            raise InvalidTopicError(
                f"topic '{name[:40]}...' ({len(name)} characters) with {partitions} partitions needs directory "
                f"names of {longest} characters; a file name has at most {NAME_MAX}.",
                f"Use a name of at most {NAME_MAX - 1 - len(str(partitions - 1))} characters, or fewer partitions.",
            )
        own = validate_topic_config(config)
        TopicConfig.from_layers(self._meta.get("defaults"), own)  # fail before touching disk
        existed = False
        with self._store_lock:
            topics = dict(self._topics())
            if name in topics:
                if not exist_ok:
                    raise TopicExistsError(name)
                existed = True
        if existed:
            return self.describe_topic(name)  # outside the store lock: it opens partition logs
        with self._store_lock:
            topics = dict(self._topics())
            if name in topics:
                if not exist_ok:
                    raise TopicExistsError(name)
            else:
                self._create_locked(name, partitions, own, topics)
        return self.describe_topic(name)

    def _create_locked(self, name: str, partitions: int, own: dict[str, Any], topics: dict[str, Any]) -> None:
        norm = name.lower().replace(".", "_")
        for other in topics:
            if other.lower().replace(".", "_") == norm:
                why = []
                if other.lower() != name.lower():
                    why.append("'.' and '_' are treated alike, as in Kafka")
                if other.replace(".", "_") != name.replace(".", "_"):
                    why.append("names differing only in case share one directory on case-insensitive file systems")
                raise InvalidTopicError(
                    f"topic '{name}' collides with existing topic '{other}' ({'; '.join(why)}).",
                    "Pick another name.",
                )
        topic_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # Leftovers of a deletion a crash interrupted must not come back as this topic's data.
        self._drop_checkpoint_entries(name)
        for entry in os.listdir(self.path):
            topic, _, part = entry.rpartition("-")
            d = os.path.join(self.path, entry)
            if topic == name and part.isdigit() and (os.path.isdir(d) or os.path.islink(d)):
                gone = _deleting_name(d)
                os.replace(d, gone)
                _tell_readers_moved(gone)
                _remove_tree(gone)  # a planted symbolic link goes; what it points to is not touched
        for p in range(partitions):
            d = os.path.join(self.path, partition_dir_name(name, p))
            os.makedirs(d, mode=DIR_MODE, exist_ok=True)
            atomic_write(
                os.path.join(d, "partition.metadata"),
                f"version: 0\ntopic_id: {topic_id}".encode(),
                sync=False,
            )
        fsync_dir(self.path)
        topics[name] = {
            "partitions": partitions,
            "config": own,
            "topic_id": topic_id,
            "created_ms": int(self._clock() * 1000),
        }
        self._write_topics(topics)

    def list_topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name (without per-partition details)."""
        self._check_open()
        return [self._info(name, entry, details=False) for name, entry in sorted(self._topics().items())]

    def topic_names(self) -> list[str]:
        return sorted(self._topics())

    def describe_topic(self, name: str) -> TopicInfo:
        """A topic with, per partition, its start and end offsets, segment count and bytes.

        Raises UnknownTopicError (with a did-you-mean) for a missing topic.
        """
        self._check_open()
        return self._info(name, self._topic_entry(name), details=True)

    def _info(self, name: str, entry: Mapping[str, Any], details: bool) -> TopicInfo:
        parts = []
        if details:
            for p in range(entry["partitions"]):
                log = self.partition(name, p)
                log.refresh()
                segs = log.segments
                parts.append(
                    PartitionInfo(p, log.log_start_offset, log.next_offset, len(segs), sum(s.size for s in segs))
                )
        return TopicInfo(
            name,
            entry["partitions"],
            dict(entry.get("config", {})),
            self._effective_config(entry),
            entry.get("topic_id", ""),
            parts,
        )

    def partition_count(self, name: str) -> int:
        """How many partitions topic ``name`` has; raises UnknownTopicError."""
        return int(self._topic_entry(name)["partitions"])

    def topic_config(self, name: str) -> TopicConfig:
        """The effective config of a topic (Kafka defaults < store defaults < topic config)."""
        return self._effective_config(self._topic_entry(name))

    def _lock_partition_file(self, path: str, what: str) -> FileLock | None:
        """The flock of the partition lock file at ``path``, taken; None when its directory is not
        there. If another handle deleted and made the topic again while this one waited, the lock
        taken is of the old file: it is taken again on the file now at ``path``."""
        while True:
            try:
                lock = FileLock(path, self._lock_timeout, what)
            except FileNotFoundError:
                return None
            try:
                lock.acquire()
            except BaseException:
                lock.close()
                raise
            if not lock.is_stale():
                return lock
            lock.release()
            lock.close()

    def delete_topic(self, name: str, *, missing_ok: bool = False) -> None:
        """Delete a topic and its data, and every consumer group's committed offsets for it.
        Crash-safe: the registry entry goes first, then each partition directory is renamed
        ``<dir>.<uuid>-delete`` (Kafka's convention) and removed. Raises UnknownTopicError unless
        ``missing_ok``."""
        self._check_open()
        # Close our logs first, outside the store lock: closing takes the partition flock and then
        # the store lock (checkpoints), the order every other path uses.
        with self._lock:
            mine = [tp for tp in self._logs if tp.topic == name]
            logs = [self._logs.pop(tp) for tp in mine]
        for log in logs:
            log.close()
        # Every partition's flock before the store lock (the order every path uses), so that no
        # other process is part-way through an append or a retention pass on a directory that
        # moves: they finish first, and see the topic gone at their next step.
        doomed: list[str] = []
        while True:
            held: dict[int, FileLock] = {}
            try:
                count = self._topics().get(name, {}).get("partitions", 0)
                for p in range(count):
                    self._refuse_link(os.path.join(self.path, partition_dir_name(name, p)))
                    path = os.path.join(self.path, partition_dir_name(name, p), LOCK_FILE)
                    lock = self._lock_partition_file(path, f"{name}-{p}")
                    if lock is not None:
                        held[p] = lock
                with self._store_lock:
                    topics = dict(self._topics())
                    entry = topics.pop(name, None)
                    if entry is None:
                        if missing_ok:
                            return
                        raise UnknownTopicError(name, topics.keys(), self.path)
                    if entry["partitions"] != count:
                        continue  # made again with other partitions meanwhile: lock those
                    self._write_topics(topics)
                    for p in range(count):
                        d = os.path.join(self.path, partition_dir_name(name, p))
                        if os.path.isdir(d):
                            gone = _deleting_name(d)  # a 249-character name stays a legal file name
                            os.replace(d, gone)
                            doomed.append(gone)
                            if p in held:
                                # At once, before anything else can fail: a log another handle
                                # holds open sees its generation move at its next read, finds its
                                # directory gone and says the topic was deleted. (Without a lock
                                # file no log was ever opened on it.)
                                advance_layout_generation(held[p].fd)
                    fsync_dir(self.path)
                    self._drop_checkpoint_entries(name)
                    break
            finally:
                for lock in held.values():
                    lock.release()
                    lock.close()
        for d in doomed:
            _remove_tree(d)
        # Consumer groups forget their offsets for it, as Kafka's coordinator does. (The groups
        # layer takes the store as an object and imports nothing of this module: no cycle.)
        from .groups.admin import forget_topic

        forget_topic(self, name)

    # --- partitions ---------------------------------------------------------------------------------

    def partition(self, topic: str, partition: int) -> PartitionLog:
        """The log of one partition, opened (and, after a crash, recovered) on first use.

        Raises UnknownTopicError / UnknownPartitionError.
        """
        self._check_open()
        if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < MAX_PARTITIONS:
            raise UnknownPartitionError(topic, partition, None)  # before any file is looked at
        log = self._logs.get((topic, partition))  # a plain tuple hashes as the TopicPartition key
        if log is not None:
            if not log.deleted():
                return log
            # Another process deleted (and maybe re-created) the topic: drop the stale log.
            with self._lock:
                if self._logs.get((topic, partition)) is log:
                    del self._logs[topic, partition]
            log.close()
        tp = TopicPartition(topic, partition)
        entry = self._topic_entry(topic)
        if isinstance(partition, bool) or not isinstance(partition, int) or not 0 <= partition < entry["partitions"]:
            raise UnknownPartitionError(topic, partition, entry["partitions"])
        with self._lock:
            log = self._logs.get(tp)
            if log is None:
                d = self._partition_dir(topic, partition)
                self._evict_idle_logs()
                for attempt in range(3):
                    config = self._effective_config(entry)
                    rp = self._read_checkpoint(RECOVERY_POINT_CHECKPOINT).get(tp, 0)
                    if tp in self._repairing:
                        rp = -1  # the recovery on opening cuts at the first damage (the explicit repair)
                    lso = self._read_checkpoint(LOG_START_OFFSET_CHECKPOINT).get(tp, 0)
                    try:
                        log = PartitionLog(
                            d,
                            topic,
                            partition,
                            config,
                            recovery_point=rp,
                            log_start_offset=lso,
                            clock=self._clock,
                            on_checkpoint=self._checkpoint,
                            on_segment_open=self._handles.touch,
                            lock_timeout=self._lock_timeout,
                            read_only=self.read_only,
                        )
                        break
                    except UnknownTopicError:
                        # Deleted (and perhaps made again) while it opened: it found its lock file
                        # stale. Open it again if the topic is there (else this raises).
                        entry = self._topic_entry(topic)
                        if attempt == 2 or not partition < entry["partitions"]:
                            raise
                    except OSError as e:  # out of descriptors, say: StorageError names the limit
                        raise StorageError(f"open partition {topic}-{partition} in", d, e) from e
                self._logs[tp] = log
                if config.flush_ms < LONG_MAX and not self.read_only:
                    self._start_flusher()
        return log

    def _evict_idle_logs(self) -> None:
        """Close partition logs while at least ``_max_open_logs`` are open (self._lock held), so
        that reading thousands of partitions stays under RLIMIT_NOFILE: each open log holds two
        descriptors. Only a log nothing outside the store refers to is closed (a caller holding it
        keeps a working log; the next :meth:`partition` opens it again), oldest opened first.
        Closing fsyncs what was appended, so it keeps every promise made; a log fenced by a failed
        fsync stays open (it must refuse appends until the store is reopened)."""
        if len(self._logs) < self._max_open_logs:
            return
        for tp in list(self._logs):
            if len(self._logs) < self._max_open_logs * 3 // 4:
                break
            # Out of the dict first, then counted: a thread that finds it there from now on
            # holds a reference, and one that does not waits for self._lock and looks again.
            log = self._logs.pop(tp)
            # Two references left when nobody holds it: ``log`` and getrefcount's argument.
            if sys.getrefcount(log) > 2 or log._failed is not None:
                self._logs[tp] = log
                continue
            if log._unflushed:
                # Records acknowledged but not yet fsynced (flush.messages > 1): fsync them here,
                # where a failure fences the log, which then stays open so that the next append
                # learns of it (a failure swallowed by close() would be lost with the log).
                try:
                    log.flush()
                except LogStoreError:
                    self._logs[tp] = log
                    continue
            try:
                log.close()
            except (LogStoreError, OSError):
                pass  # its descriptors are closed whatever happens; the next open recovers

    def _read_checkpoint(self, name: str) -> dict[tuple[str, int], int]:
        """The entries of checkpoint file ``name`` (not to be changed), parsed again only when the
        file was replaced. Every partition opened looks itself up there, and parsing the whole file
        each time made opening N partitions take N² time. The file is only ever replaced by a
        rename (atomic_write), never written in place, and the parsed file's descriptor is held
        open, so that its inode number cannot be handed to a newer file (ext4 reuses freed
        numbers at once) while the cache trusts it."""
        path = os.path.join(self.path, name)
        with self._checkpoints_lock:
            cached = self._checkpoints.get(name)
            try:
                ino = os.stat(path).st_ino
            except FileNotFoundError:
                ino = -1
            if cached is not None:
                if cached[1] == ino:
                    return cached[2]
                del self._checkpoints[name]
                os.close(cached[0])
            if ino < 0:
                return {}
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return {}
            try:
                ino = os.fstat(fd).st_ino
                entries = read_checkpoint(path)
                if os.stat(path).st_ino == ino:
                    self._checkpoints[name] = (fd, ino, entries)
                    fd = -1
            finally:
                if fd >= 0:
                    os.close(fd)
            return entries

    def _write_checkpoint(self, name: str, entries: dict[tuple[str, int], int]) -> None:
        """Replace checkpoint file ``name`` (store lock held, so nobody else replaces it meanwhile)
        and keep what was written as the parsed copy (see _read_checkpoint)."""
        path = os.path.join(self.path, name)
        write_checkpoint(path, entries)
        with self._checkpoints_lock:
            old = self._checkpoints.pop(name, None)
            if old is not None:
                os.close(old[0])
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return  # read again next time
            self._checkpoints[name] = (fd, os.fstat(fd).st_ino, entries)

    def _refuse_link(self, d: str) -> None:
        """UnsafeStoreError when partition directory ``d`` is a symbolic link: logstore neither
        follows it nor writes through it (another user could point it anywhere)."""
        if os.path.islink(d):
            try:
                target = os.readlink(d)
            except OSError:
                target = "?"
            raise UnsafeStoreError(
                f"partition directory {d} is a symbolic link (to {target}); logstore does not follow links in a "
                "store, so nothing was read or written through it.",
                f"Put the real directory in its place (rm {shlex.quote(d)}, then move the data there), or remove "
                "the link if it was not yours.",
            )

    def _partition_dir(self, topic: str, partition: int) -> str:
        """The directory of a partition the registry lists, checked before it is opened: not a
        symbolic link (UnsafeStoreError), and there (StoreFormatError: a lost partition directory is
        never silently made again, empty, with its offsets restarting at 0)."""
        d = os.path.join(self.path, partition_dir_name(topic, partition))
        self._refuse_link(d)
        if not os.path.isdir(d):
            count = self._topic_entry(topic)["partitions"]  # deleted meanwhile: UnknownTopicError
            if partition >= count:
                raise UnknownPartitionError(topic, partition, count)
            raise StoreFormatError(
                f"partition directory {d} is missing, though {TOPICS_FILE} lists topic '{topic}' with {count} "
                "partition(s).",
                "Restore it from a copy, or delete the topic and create it again. Nothing was made in its place.",
            )
        return d

    def _checkpoint(self, log: PartitionLog) -> None:
        """Persist a partition's recovery point (and log start offset) in Kafka's checkpoint files."""
        tp = (log.topic, log.partition)
        with self._store_lock:
            entries = self._read_checkpoint(RECOVERY_POINT_CHECKPOINT)
            if entries.get(tp) != log.recovery_point:
                entries = dict(entries)
                entries[tp] = log.recovery_point
                self._write_checkpoint(RECOVERY_POINT_CHECKPOINT, entries)
            entries = dict(self._read_checkpoint(LOG_START_OFFSET_CHECKPOINT))
            first = log.segments[0].base_offset
            if log.log_start_offset > first:
                if entries.get(tp) != log.log_start_offset:
                    entries[tp] = log.log_start_offset
                    self._write_checkpoint(LOG_START_OFFSET_CHECKPOINT, entries)
            elif tp in entries:
                del entries[tp]
                self._write_checkpoint(LOG_START_OFFSET_CHECKPOINT, entries)

    def _drop_checkpoint_entries(self, topic: str) -> None:
        for name in (RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT):
            path = os.path.join(self.path, name)
            entries = read_checkpoint(path)
            kept = {k: v for k, v in entries.items() if k[0] != topic}
            if len(kept) != len(entries):
                write_checkpoint(path, kept)

    def _start_flusher(self) -> None:
        if self._flusher is not None:
            return

        def run() -> None:
            while not self._flusher_stop.wait(0.05):
                for log in list(self._logs.values()):
                    try:
                        log.maybe_flush()
                    except Exception:  # a failed fsync surfaces on the next append or flush
                        pass

        self._flusher = threading.Thread(target=run, name="logstore-flusher", daemon=True)
        self._flusher.start()

    # --- retention ----------------------------------------------------------------------------------

    def alter_topic_config(
        self, name: str, set: Mapping[str, Any] | None = None, delete: Sequence[str] = ()
    ) -> TopicConfig:
        """Change a topic's own config (Kafka's ``kafka-configs --alter``): ``set`` keys to values,
        ``delete`` keys back to the store default. Takes effect in this process at once, and in
        others at their next retention pass or open. Returns the effective config. Raises
        UnknownTopicError, InvalidConfigError (nothing is changed)."""
        self._check_open()
        changes = validate_topic_config(set)
        delete = [str(k).replace("_", ".") for k in delete]
        for key in delete:
            if key not in TOPIC_KEYS:
                raise InvalidConfigError(
                    f"unknown topic config '{key}'.", did_you_mean(key, TOPIC_KEYS) or "See 'logstore topic describe'."
                )
        with self._store_lock:
            topics = dict(self._topics())
            if name not in topics:
                self._topic_entry(name)  # raises UnknownTopicError with a suggestion
            entry = dict(topics[name])
            own = {k: v for k, v in dict(entry.get("config", {})).items() if k not in delete}
            own.update(changes)
            entry["config"] = own
            config = self._effective_config(entry)  # validates the combination
            topics[name] = entry
            self._write_topics(topics)
        for (t, _), log in list(self._logs.items()):
            if t == name:
                log.config = config
        return config

    def apply_retention(
        self, topic: str | None = None, *, dry_run: bool = False, now: int | None = None
    ) -> list[DeletionResult]:
        """Delete the segments retention says are due (see :mod:`logstore.retention`) in every
        partition of ``topic`` (all topics when None), with each topic's current config. ``now``
        is ms since the epoch (default: the store's clock). ``dry_run`` changes no file and reports
        the same plan. Returns one result per partition (``segments_deleted == 0`` where nothing
        was due). Raises UnknownTopicError, StorageError."""
        self._check_open()
        now_ms = int(self._clock() * 1000) if now is None else int(now)
        names = [topic] if topic is not None else self.topic_names()
        out = []
        for name in names:
            try:
                entry = self._topic_entry(name)
            except UnknownTopicError:
                if topic is not None:
                    raise
                continue  # deleted by another process since the list was taken
            config = self._effective_config(entry)
            choose = choose_segments(config, now_ms)
            for p in range(entry["partitions"]):
                log = self.partition(name, p)
                log.config = config  # another process may have altered it
                out.append(log.delete_oldest_segments(choose, dry_run=dry_run))
        return out

    def delete_records(self, topic: str, partition: int, before_offset: int) -> int:
        """Kafka's DeleteRecords for one partition: records below ``before_offset`` (``-1``: the
        log end) can no longer be read, and the segments wholly below it are deleted. Returns the
        new log start offset. Raises UnknownTopicError / UnknownPartitionError,
        OffsetOutOfRangeError above the log end."""
        return self.partition(topic, partition).delete_records(before_offset)

    def recover(
        self, topic: str | None = None, *, truncate_damaged: bool = False, dry_run: bool = False
    ) -> list[RepairResult]:
        """Run the documented repairs now, on every partition of ``topic`` (all when None): check
        every batch's CRC, rebuild every index from its log, cut a torn tail, remove leftover
        files. Damage inside fsynced data is reported, not cut, unless ``truncate_damaged``: then
        the log is cut at the first damaged batch (records after it are lost; the report says how
        many bytes). ``dry_run`` only verifies and reports. Each partition must not be open in
        another process (StoreLockedError names it; nothing of it is changed). Raises
        UnknownTopicError."""
        self._check_open()
        names = [topic] if topic is not None else self.topic_names()
        out = []
        for name in names:
            entry = self._topic_entry(name)
            for p in range(entry["partitions"]):
                out.append(self._recover_partition(name, p, truncate_damaged, dry_run))
        return out

    def _recover_partition(self, topic: str, partition: int, truncate_damaged: bool, dry_run: bool) -> RepairResult:
        tp = TopicPartition(topic, partition)
        d = self._partition_dir(topic, partition)
        config = self._effective_config(self._topic_entry(topic))
        # What is wrong, seen before anything is touched (a read-only open recovers nothing).
        look = PartitionLog(d, topic, partition, config, read_only=True, log_start_offset=0)
        try:
            found = look.verify()
            segments, before_end = len(look.segments), look.next_offset
            last_log = look.segments[-1].log_path
        finally:
            look.close()
        problems = tuple(str(x) for x in found)
        # Damage in a log that is not a torn tail (the end of the last segment) is left alone
        # unless asked: nothing of the partition is touched then.
        damage = [
            p
            for p in found
            if p.path.endswith(".log")
            and not (p.path == last_log and ("trailing bytes" in p.what or "not a whole magic-2" in p.what))
        ]
        damaged = "Nothing was cut; run recover --truncate-damaged to cut the log there."
        if dry_run or self.read_only:
            return RepairResult(
                topic,
                partition,
                segments,
                0,
                0,
                before_end,
                problems,
                error=f"{damage[0]}. {damaged}" if damage and not truncate_damaged else None,
                dry_run=True,
            )
        if damage and not truncate_damaged:
            return RepairResult(topic, partition, segments, 0, 0, before_end, problems, error=f"{damage[0]}. {damaged}")
        fresh = tp not in self._logs
        try:
            log = self.partition(topic, partition)
        except CorruptDataError as e:  # opening it ran the automatic recovery, which found damage
            if not truncate_damaged:
                return RepairResult(topic, partition, segments, 0, 0, before_end, problems, error=f"{e} {damaged}")
            # Asked to cut: open again with that recovery cutting at the first damage instead.
            try:
                os.unlink(os.path.join(d, CLEAN_FILE))
            except FileNotFoundError:
                pass
            self._repairing.add(tp)
            try:
                log = self.partition(topic, partition)
            except CorruptDataError as e2:
                return RepairResult(topic, partition, segments, 0, 0, before_end, problems, error=str(e2))
            finally:
                self._repairing.discard(tp)
        opened = log.load_report if fresh else None
        try:
            report = log.repair(truncate_damaged)
        except StoreLockedError as e:
            return RepairResult(topic, partition, segments, 0, 0, before_end, problems, error=str(e), locked=True)
        except CorruptDataError as e:
            with self._lock:  # its view is half-rebuilt: forget it; the next open recovers again
                self._logs.pop(tp, None)
            log.discard()
            return RepairResult(topic, partition, segments, 0, 0, before_end, problems, error=f"{e} {damaged}")
        reports = [r for r in (opened, report) if r is not None]
        return RepairResult(
            topic,
            partition,
            len(log.segments),
            len(report.recovered),
            sum(t.truncated_bytes for r in reports for t in r.truncations),
            log.next_offset,
            problems,
            tuple(os.path.basename(f) for r in reports for f in r.removed_files),
            deleted_segments=tuple(os.path.basename(f) for r in reports for f in r.deleted_segments),
            records_lost=max(before_end - log.next_offset, 0),
        )

    def _start_retention(self, interval: float) -> None:
        def run() -> None:
            while not self._flusher_stop.wait(interval):
                try:
                    self.apply_retention()
                except Exception as e:  # kept for the application to look at; the next pass retries
                    self.retention_errors = [*self.retention_errors, e][-10:]

        self._retention_thread = threading.Thread(target=run, name="logstore-retention", daemon=True)
        self._retention_thread.start()

    # --- data ---------------------------------------------------------------------------------------

    def append(
        self,
        topic: str,
        partition: int,
        values: Sequence[bytes | None],
        keys: Sequence[bytes | None] | None = None,
        *,
        timestamps: int | Sequence[int] | None = None,
        headers: Sequence[Sequence[tuple[str, bytes | None]] | None] | None = None,
        compression_type: str = "none",
    ) -> AppendResult:
        """Append one batch built from ``values`` (and keys, timestamps in ms, headers) to a
        partition; returns its offsets once durable per the topic's flush policy."""
        return self.partition(topic, partition).append_records(
            values, keys, timestamps=timestamps, headers=headers, compression_type=compression_type
        )

    def read(self, topic: str, partition: int, offset: int, max_records: int | None = None) -> RecordColumns:
        """Records of a partition from ``offset`` on (see :meth:`PartitionLog.read_records`)."""
        return self.partition(topic, partition).read_records(offset, max_records)

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> OffsetAndTimestamp | None:
        """First record at or after ``timestamp`` (ms) in a partition, or None."""
        return self.partition(topic, partition).offset_for_time(timestamp)

    def verify(self, topic: str | None = None) -> list[Problem]:
        """Check every partition (of ``topic``, or all): see :meth:`PartitionLog.verify`. Also checks
        that the checkpoint files parse. Changes nothing."""
        problems: list[Problem] = []
        for name in (RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT):
            try:
                read_checkpoint(os.path.join(self.path, name))
            except Exception as e:
                problems.append(Problem(os.path.join(self.path, name), None, str(e)))
        names = [topic] if topic is not None else self.topic_names()
        for name in names:
            entry = self._topic_entry(name)
            for p in range(entry["partitions"]):
                try:
                    log = self.partition(name, p)
                except CorruptDataError as e:  # damage found while opening: report, keep going
                    problems.append(Problem(e.path or f"{name}-{p}", e.position, e.detail))
                    continue
                except (StoreFormatError, UnsafeStoreError) as e:  # a missing or symlinked directory
                    problems.append(Problem(os.path.join(self.path, partition_dir_name(name, p)), None, str(e)))
                    continue
                problems += log.verify()
        return problems

    def flush(self) -> None:
        """fsync every open partition."""
        for log in list(self._logs.values()):
            log.flush()

    def close(self) -> None:
        """Flush and close every partition (writing clean-shutdown markers). Idempotent."""
        if self._closed:
            return
        self._flusher_stop.set()
        if self._flusher is not None:
            self._flusher.join()
        if self._retention_thread is not None:
            self._retention_thread.join()
        errors = []
        with self._lock:
            for log in self._logs.values():
                try:
                    log.close()
                except Exception as e:
                    errors.append(e)
            self._logs.clear()
            self._closed = True
            with self._checkpoints_lock:
                for fd, _, _ in self._checkpoints.values():
                    os.close(fd)
                self._checkpoints.clear()
        self._store_lock.close()
        if errors:
            raise errors[0]

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogStore({self.path!r})"

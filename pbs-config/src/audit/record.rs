//! One audit record: what an operation reports ([`Event`]), the line it
//! becomes ([`Record`]) and the hash that chains it to the line before.
//!
//! A line is one JSON object, its members in this order: `seq`, `time`,
//! `actor`, `unix-user` (CLI only), `origin`, `op`, `ids`, `fingerprints`,
//! `job` (if any), `phase`, `intent` (outcomes: the intent's `seq`),
//! `result` (outcomes: `ok` or the error), `prev`, `hash`. `hash` is the
//! hex SHA-256 of [`DOMAIN`] followed by the line's bytes with its
//! `,"hash":"..."` member taken off textually; `prev` is the `hash` of the
//! line before (64 zeros for the first). A line is never re-serialized to
//! check it: the bytes on disk are what is hashed.
//!
//! Nothing secret goes into a record: ids, fingerprints, names and our own
//! error texts only (which never hold key bytes or passphrases).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use anyhow::{Error, bail, format_err};
use serde::{Deserialize, Serialize};

use pbs_api_types::{Authid, Fingerprint};

/// The domain prefix of every line hash.
pub const DOMAIN: &[u8] = b"pbs-keystore audit v1\n";

/// `prev` of the first line.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line written or read (a record with many ids and a long
/// error stays far below it).
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// The longest `result` text kept; longer error texts are cut.
pub const MAX_RESULT_LEN: usize = 4096;

/// `result` of an operation that succeeded.
pub const RESULT_OK: &str = "ok";

/// `result` that `audit verify --repair` records for an interrupted
/// operation whose change the store shows.
pub const RESULT_INTERRUPTED_APPLIED: &str =
    "interrupted - reconciled by audit verify: the store shows the change was made";

/// `result` that `audit verify --repair` records for an interrupted
/// operation whose change the store does not show.
pub const RESULT_INTERRUPTED_NOT_APPLIED: &str =
    "interrupted - reconciled by audit verify: the store shows the change was not made";

/// The start of the `result` that `audit verify --repair` records for an
/// interrupted operation the store cannot tell about (the reason follows).
pub const RESULT_INTERRUPTED_UNKNOWN: &str =
    "interrupted - reconciled by audit verify: the store cannot tell whether the change was made";

/// The member that ends every line, up to the hex digits.
const HASH_MEMBER: &str = ",\"hash\":\"";

macro_rules! ops {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, changes_key: $changes:literal;)*) => {
        /// What an audited operation does (`op` of a record, kebab-case).
        ///
        /// New operations are added here; a log written by a newer version
        /// may name operations this one does not know (see [`Record::op`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Op {
            $($(#[$doc])* $variant,)*
        }

        impl Op {
            /// Every operation.
            pub const ALL: &[Op] = &[$(Op::$variant,)*];

            /// Its name in a record.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Op::$variant => $name,)*
                }
            }

            /// Whether it changes a key's files or config entry (for "last
            /// changed by").
            pub const fn changes_key(self) -> bool {
                match self {
                    $(Op::$variant => $changes,)*
                }
            }
        }
    };
}

ops! {
    /// A new key generated and stored.
    Create = "create", changes_key: true;
    /// A key file imported.
    Import = "import", changes_key: true;
    /// A key archived.
    Archive = "archive", changes_key: true;
    /// A key unarchived.
    Unarchive = "unarchive", changes_key: true;
    /// An archived key deleted: its key file moved into the trash.
    Delete = "delete", changes_key: true;
    /// An archived key deleted and its key file destroyed at once
    /// (`remove --purge`).
    DeletePurge = "delete-purge", changes_key: true;
    /// The config entry of a key whose key file was missing dropped
    /// (`remove --force`).
    DeleteForce = "delete-force", changes_key: true;
    /// A deleted key restored from the trash.
    TrashRestore = "trash-restore", changes_key: true;
    /// A key removed from the trash for good.
    Purge = "purge", changes_key: true;
    /// `verify --repair`: a mode fixed.
    RepairMode = "repair-mode", changes_key: true;
    /// `verify --repair`: an owner fixed.
    RepairOwner = "repair-owner", changes_key: true;
    /// `verify --repair`: a relocated key path rewritten.
    RepairPath = "repair-path", changes_key: true;
    /// `verify --repair`: an orphan key file moved away.
    RepairOrphan = "repair-orphan", changes_key: true;
    /// `verify --repair`: a temp file of an interrupted write removed.
    RepairTempFile = "repair-temp-file", changes_key: false;
    /// `verify --repair`: a stale lock file removed.
    RepairStaleLock = "repair-stale-lock", changes_key: false;
    /// `verify --repair`: a stale trash record removed, or a missing one
    /// written.
    RepairTrashRecord = "repair-trash-record", changes_key: false;
    /// A sync job's active or associated keys changed.
    SyncJobKeys = "sync-job-keys", changes_key: false;
    /// A user created.
    UserCreate = "user-create", changes_key: false;
    /// A user changed.
    UserUpdate = "user-update", changes_key: false;
    /// A user's password changed.
    UserPassword = "user-password", changes_key: false;
    /// A user removed.
    UserDelete = "user-delete", changes_key: false;
    /// An API token created.
    TokenCreate = "token-create", changes_key: false;
    /// An API token changed (or its secret regenerated).
    TokenUpdate = "token-update", changes_key: false;
    /// An API token removed.
    TokenDelete = "token-delete", changes_key: false;
    /// An ACL entry added.
    AclGrant = "acl-grant", changes_key: false;
    /// An ACL entry removed.
    AclRevoke = "acl-revoke", changes_key: false;
    /// Keys exported to a bundle.
    Export = "export", changes_key: false;
    /// An export bundle checked against the store.
    ExportVerify = "export-verify", changes_key: false;
    /// Keys restored from a bundle.
    Restore = "restore", changes_key: true;
    /// A paper key printed.
    Paperkey = "paperkey", changes_key: false;
    /// Rotation: the plan recorded.
    RotatePlan = "rotate-plan", changes_key: false;
    /// Rotation: the new key stored.
    RotateStoreKey = "rotate-store-key", changes_key: true;
    /// Rotation: the export of the new key proven.
    RotateProveExport = "rotate-prove-export", changes_key: false;
    /// Rotation: the sync job switched to the new key.
    RotateSwitchJob = "rotate-switch-job", changes_key: false;
    /// Rotation: the old key archived.
    RotateArchiveOldKey = "rotate-archive-old-key", changes_key: true;
    /// Rotation: done (or aborted), the journal removed.
    RotateFinish = "rotate-finish", changes_key: false;
    /// Rotation: an abort begun, before any job used the new key (which
    /// then goes into the trash).
    RotateAbort = "rotate-abort", changes_key: false;
    /// Rotation abort: the new key's file, left without its config entry
    /// by a store that was killed, moved into the trash.
    RotateAbortOrphan = "rotate-abort-orphan", changes_key: true;
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Op::ALL
            .iter()
            .copied()
            .find(|op| op.as_str() == text)
            .ok_or_else(|| format_err!("unknown audit operation {text:?}"))
    }
}

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which half of an operation a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Written and synced before the operation changes anything.
    Intent,
    /// Written after the change (or its failure); names its intent.
    Outcome,
}

/// Where an operation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// `proxmox-backup-manager` on this host.
    Cli,
    /// The API daemon, for a client at this address.
    Api(IpAddr),
    /// A program on this host that uses the library without saying who
    /// asked (see [`Caller::local`]).
    Local,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Cli => f.write_str("cli"),
            Origin::Api(addr) => write!(f, "api {addr}"),
            Origin::Local => f.write_str("local"),
        }
    }
}

impl FromStr for Origin {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text.split_once(' ') {
            None if text == "cli" => Ok(Origin::Cli),
            None if text == "local" => Ok(Origin::Local),
            Some(("api", addr)) => Ok(Origin::Api(addr.parse().map_err(|_| {
                format_err!("invalid audit origin {text:?} - not an IP address after 'api'")
            })?)),
            _ => bail!("invalid audit origin {text:?} - expected 'cli', 'local' or 'api ADDRESS'"),
        }
    }
}

/// Who asked for an operation, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated id (`root@pam` on the CLI; a user or API token).
    pub actor: Authid,
    /// The Unix user who ran the CLI (see [`Caller::cli`]).
    pub unix_user: Option<String>,
    /// CLI or API with the client's address.
    pub origin: Origin,
}

impl Caller {
    /// `root@pam` on the CLI, run by [`unix_user_of_this_process`].
    pub fn cli() -> Self {
        Self {
            actor: Authid::root_auth_id(),
            unix_user: Some(unix_user_of_this_process()),
            origin: Origin::Cli,
        }
    }

    /// An API request of `actor` from `client` (an IPv4 client of an IPv6
    /// socket is recorded by its IPv4 address).
    pub fn api(actor: Authid, client: IpAddr) -> Self {
        Self {
            actor,
            unix_user: None,
            origin: Origin::Api(client.to_canonical()),
        }
    }

    /// A program on this host that uses the library without saying who
    /// asked (a [`ConfigDir`](crate::ConfigDir) without
    /// [`with_caller`](crate::ConfigDir::with_caller), the upstream-named
    /// free functions): `root@pam`, as for the CLI, with the Unix user who
    /// runs it, and the origin `local`, so a record never hides that nobody
    /// said who asked.
    pub fn local() -> Self {
        Self {
            origin: Origin::Local,
            ..Self::cli()
        }
    }
}

/// The Unix user who runs this process: the login user the kernel keeps
/// for the session (`/proc/self/loginuid`, which `sudo` and `su` do not
/// change) if there is one, else the real user. Its name, or its number if
/// it has none.
///
/// Every operation of a [`ConfigDir`](crate::ConfigDir) without a caller
/// asks ([`Caller::local`]), so both lookups are made once per process:
/// the login uid is set when the session starts and never again for its
/// processes, and the name of a uid is looked up again only if the real
/// uid changed since (a user renamed while a process runs keeps its old
/// name in that process's records).
pub fn unix_user_of_this_process() -> String {
    static LOGIN_UID: OnceLock<Option<u32>> = OnceLock::new();
    static NAME: Mutex<Option<(u32, String)>> = Mutex::new(None);
    let login = *LOGIN_UID.get_or_init(|| {
        std::fs::read_to_string("/proc/self/loginuid")
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|&uid| uid != u32::MAX)
    });
    let uid = login.unwrap_or_else(|| nix::unistd::getuid().as_raw());
    let mut cached = NAME.lock().unwrap_or_else(|err| err.into_inner());
    match &*cached {
        Some((known, name)) if *known == uid => name.clone(),
        _ => {
            let name = crate::ownership::user_name_of(uid);
            *cached = Some((uid, name.clone()));
            name
        }
    }
}

/// What an operation reports about itself: who, what, on which keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Who asked.
    pub caller: Caller,
    /// What is done.
    pub op: Op,
    /// The key ids (or user ids, token ids, ACL paths) concerned.
    pub ids: Vec<String>,
    /// The fingerprints of the keys concerned.
    pub fingerprints: Vec<Fingerprint>,
    /// The sync job concerned, if any.
    pub job: Option<String>,
}

impl Event {
    /// `op` asked for by `caller`, on nothing yet (add with [`Event::id`]...).
    pub fn new(caller: &Caller, op: Op) -> Self {
        Self {
            caller: caller.clone(),
            op,
            ids: Vec::new(),
            fingerprints: Vec::new(),
            job: None,
        }
    }

    /// Adds an id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.ids.push(id.into());
        self
    }

    /// Adds a fingerprint.
    pub fn fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprints.push(fingerprint);
        self
    }

    /// Names the sync job.
    pub fn job(mut self, job: impl Into<String>) -> Self {
        self.job = Some(job.into());
        self
    }
}

/// One line of the log, parsed; also what is written (the appender fills
/// `seq`, `time`, `prev` and `hash`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    /// Position in the log: 1, 2, ... (equal to the line number).
    pub seq: u64,
    /// When it was written (seconds since the epoch).
    pub time: i64,
    /// The authenticated id.
    pub actor: String,
    /// The Unix user who ran the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_user: Option<String>,
    /// `cli` or `api ADDRESS`.
    pub origin: String,
    /// The operation ([`Op`] by name).
    pub op: String,
    /// Ids concerned.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Fingerprints concerned (full, colon-separated hex).
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// Sync job concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Intent or outcome.
    pub phase: Phase,
    /// For an outcome: the `seq` of its intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<u64>,
    /// For an outcome: `ok` or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The `hash` of the line before.
    pub prev: String,
    /// This line's hash (see the module docs); empty while being written.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Record {
    /// A record of `event` in `phase`, not yet placed in the log.
    pub(crate) fn draft(
        event: &Event,
        phase: Phase,
        intent: Option<u64>,
        result: Option<String>,
    ) -> Self {
        Self {
            seq: 0,
            time: 0,
            actor: event.caller.actor.to_string(),
            unix_user: event.caller.unix_user.clone(),
            origin: event.caller.origin.to_string(),
            op: event.op.as_str().to_string(),
            ids: event.ids.clone(),
            fingerprints: event.fingerprints.iter().map(|fp| fp.signature()).collect(),
            job: event.job.clone(),
            phase,
            intent,
            result,
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// The outcome of this intent, with `result`, not yet placed in the log.
    pub(crate) fn outcome_draft(&self, result: String) -> Self {
        Self {
            phase: Phase::Outcome,
            intent: Some(self.seq),
            result: Some(result),
            seq: 0,
            time: 0,
            prev: String::new(),
            hash: String::new(),
            ..self.clone()
        }
    }

    /// The operation; `None` for one this version does not know.
    pub fn op(&self) -> Option<Op> {
        self.op.parse().ok()
    }

    /// Whether this outcome's change took effect: `ok`, or an interrupted
    /// operation whose change the store showed.
    pub fn took_effect(&self) -> bool {
        self.phase == Phase::Outcome
            && matches!(
                self.result.as_deref(),
                Some(RESULT_OK) | Some(RESULT_INTERRUPTED_APPLIED)
            )
    }

    /// Whether it names the id `id`.
    pub fn names_id(&self, id: &str) -> bool {
        self.ids.iter().any(|known| known == id)
    }

    /// The key ids it names: every id of a key operation (and of an
    /// operation this version does not know), a file's path as a repair
    /// names it standing for the key the file is of ([`key_of_id`]); for
    /// an ACL change, the key its ACL path is on
    /// (`/system/encryption-keys/<id>`), if any; none for a user or token
    /// change (its ids are user and token ids). Who may not see one of them
    /// may not see the record (findings 37 and 44).
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        let (all, acl_path) = match self.op() {
            Some(
                Op::UserCreate
                | Op::UserUpdate
                | Op::UserPassword
                | Op::UserDelete
                | Op::TokenCreate
                | Op::TokenUpdate
                | Op::TokenDelete,
            ) => (&[][..], None),
            Some(Op::AclGrant | Op::AclRevoke) => (&[][..], self.ids.first()),
            _ => (self.ids.as_slice(), None),
        };
        let on_key = acl_path.and_then(|path| {
            let below = path.strip_prefix(crate::acl::KEYS_ACL_PATH)?;
            below.strip_prefix('/')?.split('/').next()
        });
        all.iter()
            .map(|id| key_of_id(id))
            .chain(on_key.filter(|id| !id.is_empty()))
    }

    /// Seals the record: sets its `hash` and returns its line (without the
    /// newline).
    /// `seq`, `time` and `prev` must be set.
    pub(crate) fn seal(&mut self) -> Result<String, Error> {
        self.hash.clear();
        let body = serde_json::to_string(self)
            .map_err(|err| format_err!("unable to encode audit record - {err}"))?;
        let hash = hex::encode(line_hash(body.as_bytes()));
        let mut line = body;
        line.pop(); // the closing brace: the hash member goes last
        line.push_str(HASH_MEMBER);
        line.push_str(&hash);
        line.push_str("\"}");
        if line.len() > MAX_LINE_LEN {
            bail!(
                "audit record of '{}' on {} ids is {} bytes, more than the {MAX_LINE_LEN} byte limit",
                self.op,
                self.ids.len(),
                line.len()
            );
        }
        self.hash = hash;
        Ok(line)
    }
}

/// The key an id of a key operation stands for: itself; for a trash
/// entry's name (`<id>@<time>-<random>`, the second id of a trash restore
/// and of a purge; no key id holds an `@`) the key it is of (finding 59:
/// a restore under another id named the masked one only so); or for the
/// path of a file in the key directory or its trash as a repair names it
/// (relative to the config dir: `encryption-keys/hidden.enc.tmp_AbC123`),
/// the key the file is of, by its name: `<id>.enc`, its lock
/// `<id>.enc.lck`, a temp file of either (`.tmp_XXXXXX`), a trash entry's
/// `<id>@...` (finding 44: such a path was a repair record's only id). The
/// path of any other file (a config file, the audit log's) is itself: it
/// names no key.
fn key_of_id(id: &str) -> &str {
    fn in_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
        path.strip_prefix(dir)?.strip_prefix('/')
    }
    let Some(name) = in_dir(id, crate::files::KEY_DIR_NAME) else {
        return crate::trash::entry_id(id);
    };
    if let Some(entry) = in_dir(name, crate::files::TRASH_DIR_NAME) {
        return crate::trash::entry_id(entry);
    }
    if name.contains('/') || name.starts_with('.') {
        return id;
    }
    let name = crate::dir_handle::temp_file_target(name).unwrap_or(name);
    let name = name.strip_suffix(".lck").unwrap_or(name);
    name.strip_suffix(".enc").unwrap_or(name)
}

/// SHA-256 of [`DOMAIN`] and `body` (a line without its hash member).
pub fn line_hash(body: &[u8]) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(body);
    hasher.finish()
}

/// Why a line is not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// No `,"hash":"<64 hex digits>"}` at its end.
    NoHash,
    /// Not a JSON record (the parser's message: position and expectation,
    /// never the line's content).
    Invalid(String),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::NoHash => f.write_str("it does not end with its hash member"),
            LineError::Invalid(err) => write!(f, "it is not a valid record ({err})"),
        }
    }
}

/// A line taken apart: the record, the hash its bytes give and the hash it
/// states.
#[derive(Clone, Debug)]
pub struct ParsedLine {
    /// The record.
    pub record: Record,
    /// SHA-256 over the domain and the line without its hash member.
    pub computed: [u8; 32],
    /// The `hash` member's value.
    pub stored: [u8; 32],
}

impl ParsedLine {
    /// Whether the line is what was hashed when it was written.
    pub fn hash_matches(&self) -> bool {
        self.computed == self.stored
    }
}

/// Takes one line (without its newline) apart: the hash member is cut off
/// textually and the rest hashed as it is on disk.
pub fn parse_line(line: &str) -> Result<ParsedLine, LineError> {
    let (body_len, stored) = split_hash(line).ok_or(LineError::NoHash)?;
    let mut body = Vec::with_capacity(body_len + 1);
    body.extend_from_slice(&line.as_bytes()[..body_len]);
    body.push(b'}');
    let computed = line_hash(&body);
    let record: Record = serde_json::from_str(line).map_err(|err| {
        // serde_json's message quotes at most a field name or a type
        LineError::Invalid(format!(
            "{} at column {}",
            match err.classify() {
                serde_json::error::Category::Data => "unexpected field or value",
                serde_json::error::Category::Syntax => "not JSON",
                _ => "incomplete",
            },
            err.column()
        ))
    })?;
    Ok(ParsedLine {
        record,
        computed,
        stored,
    })
}

/// The length of the line before its hash member, and the stated hash.
fn split_hash(line: &str) -> Option<(usize, [u8; 32])> {
    let rest = line.strip_suffix("\"}")?;
    if rest.len() < 64 + HASH_MEMBER.len() {
        return None;
    }
    let (head, digits) = rest.split_at(rest.len() - 64);
    let body = head.strip_suffix(HASH_MEMBER)?;
    if !digits
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(digits, &mut hash).ok()?;
    Some((body.len(), hash))
}

/// Parses a hex hash (`prev`, `hash`).
pub(crate) fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| hex::decode_to_slice(text, &mut hash).ok())
        .flatten()
        .map(|()| hash)
}

/// The `result` text of an operation's result: `ok`, or the error as the
/// CLI prints it (one line), cut to [`MAX_RESULT_LEN`] bytes.
pub fn result_text<T>(result: &Result<T, Error>) -> String {
    match result {
        Ok(_) => RESULT_OK.to_string(),
        Err(err) => {
            // as the CLI prints it: the house style layers messages with
            // " - " (`layer_err`), so the top message holds the chain
            let mut text = err
                .to_string()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" - ");
            if text.is_empty() || text == RESULT_OK {
                // never mistaken for a success
                text = format!("failed: {text}");
            }
            if text.len() > MAX_RESULT_LEN {
                let mut cut = MAX_RESULT_LEN;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push_str(" ...");
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            actor: "alice@pbs!tok".parse().unwrap(),
            unix_user: None,
            origin: Origin::Api("192.0.2.7".parse().unwrap()),
        }
    }

    #[test]
    fn the_keys_a_record_names() {
        let named = |op: Op, ids: &[&str]| {
            let event = ids
                .iter()
                .fold(Event::new(&caller(), op), |event, id| event.id(*id));
            let record = Record::draft(&event, Phase::Intent, None, None);
            record.key_ids().map(str::to_string).collect::<Vec<_>>()
        };
        assert_eq!(named(Op::Export, &["k1", "k2"]), ["k1", "k2"]);
        assert_eq!(named(Op::UserCreate, &["k1@pbs"]), Vec::<String>::new());
        assert_eq!(named(Op::TokenDelete, &["a@pbs!k1"]), Vec::<String>::new());
        let acl = |path| named(Op::AclGrant, &[path, "a@pbs", "Admin"]);
        assert_eq!(acl("/system/encryption-keys/k1"), ["k1"]);
        assert_eq!(acl("/system/encryption-keys"), Vec::<String>::new());
        assert_eq!(acl("/system/encryption-keysx/k1"), Vec::<String>::new());
        assert_eq!(acl("/datastore/k1"), Vec::<String>::new());
        // a repair names a file by its path: the key it is of
        for path in [
            "encryption-keys/k1.enc",
            "encryption-keys/k1.enc.lck",
            "encryption-keys/k1.enc.tmp_AbC123",
            "encryption-keys/k1.tmp_AbC123",
            "encryption-keys/.trash/k1@1795966067-Qf4gnl.enc",
            "encryption-keys/.trash/k1@1795966067-Qf4gnl.json.tmp_AbC123",
        ] {
            assert_eq!(named(Op::RepairTempFile, &[path]), ["k1"], "{path}");
        }
        assert_eq!(
            named(Op::RepairMode, &["k.enc", "encryption-keys/k.enc.enc"]),
            ["k.enc", "k.enc"]
        );
        // a trash restore and a purge name the trash entry by its name
        for op in [Op::TrashRestore, Op::Purge] {
            assert_eq!(
                named(op, &["k2", "k1@1795966067-Qf4gnl"]),
                ["k2", "k1"],
                "{op:?}"
            );
        }
        for path in [
            "encryption-keys.cfg.tmp_AbC123",
            "encryption-keys",
            "encryption-keys/.trash",
            "encryption-keys/.audit/log",
            "encryption-keys/.locks/sync.cfg.written",
        ] {
            assert_eq!(named(Op::RepairTempFile, &[path]), [path]);
        }
        // an operation this version does not know: every id is a key's
        let mut unknown = Record::draft(
            &Event::new(&caller(), Op::AclRevoke),
            Phase::Intent,
            None,
            None,
        );
        unknown.op = "acl-rewrite".to_string();
        unknown.ids = vec!["/system/encryption-keys/k1".to_string()];
        assert_eq!(
            unknown.key_ids().collect::<Vec<_>>(),
            ["/system/encryption-keys/k1"]
        );
    }

    fn record() -> Record {
        let fp = Fingerprint::new([0xab; 32]);
        let event = Event::new(&caller(), Op::Archive)
            .id("offsite")
            .fingerprint(fp)
            .job("job1");
        let mut record = Record::draft(&event, Phase::Intent, None, None);
        record.seq = 3;
        record.time = 1_775_840_036;
        record.prev = ZERO_HASH.to_string();
        record
    }

    #[test]
    fn a_line_has_its_members_in_order_and_hash_last() {
        let line = record().seal().unwrap();
        let order = [
            "\"seq\":3,",
            "\"time\":1775840036,",
            "\"actor\":\"alice@pbs!tok\",",
            "\"origin\":\"api 192.0.2.7\",",
            "\"op\":\"archive\",",
            "\"ids\":[\"offsite\"],",
            "\"fingerprints\":[\"ab:ab:",
            "\"job\":\"job1\",",
            "\"phase\":\"intent\",",
            "\"prev\":\"0000",
            ",\"hash\":\"",
        ];
        let mut at = 0;
        for member in order {
            let found = line[at..]
                .find(member)
                .unwrap_or_else(|| panic!("{member} not after {at} in {line}"));
            at += found + member.len();
        }
        assert!(!line.contains("unix-user") && !line.contains("result"));
        assert!(line.ends_with("\"}"));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_hash_covers_the_line_without_its_hash_member() {
        let mut record = record();
        let line = record.seal().unwrap();
        let body = line.replace(&format!(",\"hash\":\"{}\"", record.hash), "");
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(b"pbs-keystore audit v1\n");
        hasher.update(body.as_bytes());
        assert_eq!(hex::encode(hasher.finish()), record.hash);

        let parsed = parse_line(&line).unwrap();
        assert!(parsed.hash_matches());
        assert_eq!(parsed.record, record);
    }

    #[test]
    fn an_edited_line_no_longer_matches_its_hash() {
        let line = record().seal().unwrap();
        let edited = line.replace("\"archive\"", "\"delete\"");
        let parsed = parse_line(&edited).unwrap();
        assert!(!parsed.hash_matches());
        // whitespace counts too: the bytes are hashed, not the values
        let spaced = line.replacen("\"seq\":3", "\"seq\": 3", 1);
        assert!(!parse_line(&spaced).unwrap().hash_matches());
    }

    #[test]
    fn lines_without_a_hash_or_json_are_refused() {
        let line = record().seal().unwrap();
        assert_eq!(
            parse_line(&line[..line.len() - 1]).unwrap_err(),
            LineError::NoHash
        );
        let upper = line.to_uppercase();
        assert_eq!(parse_line(&upper).unwrap_err(), LineError::NoHash);
        let err = parse_line(&format!("[1{}", &line[1..])).unwrap_err();
        assert!(matches!(err, LineError::Invalid(_)), "{err:?}");
        // a member twice is refused, not read as the first or the last
        let twice = line.replacen(
            "\"op\":\"archive\",",
            "\"op\":\"archive\",\"op\":\"delete\",",
            1,
        );
        assert!(matches!(
            parse_line(&twice).unwrap_err(),
            LineError::Invalid(_)
        ));
    }

    #[test]
    fn op_names_are_kebab_case_and_round_trip() {
        for op in Op::ALL {
            let name = op.as_str();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            assert_eq!(name.parse::<Op>().unwrap(), *op);
        }
        let mut names: Vec<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
        assert!("erase".parse::<Op>().is_err());
    }

    #[test]
    fn origins_round_trip() {
        for origin in [
            Origin::Cli,
            Origin::Local,
            Origin::Api("192.0.2.7".parse().unwrap()),
            Origin::Api("2001:db8::1".parse().unwrap()),
        ] {
            assert_eq!(origin.to_string().parse::<Origin>().unwrap(), origin);
        }
        assert!("api".parse::<Origin>().is_err());
        assert!("api example.com".parse::<Origin>().is_err());
    }

    #[test]
    fn result_texts_are_ok_or_the_error_cut_to_size() {
        assert_eq!(result_text(&Ok::<(), Error>(())), "ok");
        use proxmox_lang::error::ErrorLayer;
        let err: Result<(), Error> = Err(format_err!("inner\nsecond line"));
        let err = err.layer_err(|| "outer");
        assert_eq!(result_text(&err), "outer - inner - second line");
        let long: Result<(), Error> = Err(format_err!("{}", "é".repeat(MAX_RESULT_LEN)));
        let text = result_text(&long);
        assert!(text.len() <= MAX_RESULT_LEN + 4 && text.ends_with(" ..."));
        let sneaky: Result<(), Error> = Err(format_err!("ok"));
        assert_ne!(result_text(&sneaky), "ok");
    }
}

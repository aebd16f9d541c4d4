//! The audit log against a log tampered with by hand: each change is
//! found and named by its line; a checkpoint kept off the host proves a
//! truncation or a rewrite the host re-signed; another key's log is a
//! foreign signature. And no record holds a secret, error texts included.
//!
//! The tampering is done here with plain file edits and an independent
//! implementation of the line hash (SHA-256 over the domain prefix and the
//! line without its hash member), as an attacker with root would do it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use pbs_api_types::Kdf;
use pbs_config::audit::{
    AuditLog, AuditReport, Caller, Event, Op, Origin, ProblemKind, VerifyOptions,
};
use pbs_key_config::KeyConfig;

use pbs_test_kit::{TestDir, key_config, raw_key};

/// A store whose audit log holds `ops` operations (intent and outcome
/// each: line 2n-1 is the intent of operation n, line 2n its outcome),
/// and a checkpoint of all of it kept off the host.
struct Audited {
    dir: TestDir,
    kept: String,
}

impl Audited {
    fn new(ops: usize) -> Self {
        Self::with_ids(ops, "key")
    }

    /// [`Audited::new`] with key ids `PREFIX-N`.
    fn with_ids(ops: usize, prefix: &str) -> Self {
        let dir = TestDir::new();
        let audited = Self {
            dir,
            kept: String::new(),
        };
        let log = audited.log();
        for n in 0..ops {
            let op = [Op::Create, Op::Export, Op::Archive][n % 3];
            let event = Event::new(&Caller::cli(), op)
                .id(format!("{prefix}-{}", n / 3))
                .fingerprint(key_config(n as u64).fingerprint.unwrap());
            log.intent(&event)
                .unwrap()
                .done(Ok::<_, anyhow::Error>(()))
                .unwrap();
        }
        let kept = log.checkpoint_now().unwrap().unwrap().to_note();
        Self { kept, ..audited }
    }

    fn log(&self) -> AuditLog<'_> {
        AuditLog::open_store(&self.dir.config)
            .unwrap()
            .syslog_socket(None)
    }

    fn audit_path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("encryption-keys/.audit").join(name)
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.audit_path("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write_lines(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(self.audit_path("log"), text).unwrap();
    }

    /// What an attacker with root does after rewriting the log: sign a
    /// checkpoint of it with the host's key.
    fn resign(&self) {
        std::fs::remove_file(self.audit_path("checkpoint")).unwrap();
        self.log().checkpoint_now().unwrap();
    }

    fn verify(&self, kept: &[&str], trusted: &[&str]) -> AuditReport {
        self.log()
            .verify(&VerifyOptions {
                checkpoints: kept.iter().map(|s| s.to_string()).collect(),
                trusted_keys: trusted.iter().map(|s| s.to_string()).collect(),
                repair: false,
            })
            .unwrap()
    }
}

/// The line's hash member cut off, as a verifier does it.
fn body(line: &str) -> (String, String) {
    let at = line.rfind(",\"hash\":\"").expect("hash member");
    (
        format!("{}}}", &line[..at]),
        line[at + 9..line.len() - 2].to_string(),
    )
}

fn hash(body: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(b"pbs-keystore audit v1\n");
    hasher.update(body.as_bytes());
    hex::encode(hasher.finish())
}

/// Re-hashes every line from `from` (0-based) on, fixing each `prev`: a
/// chain that holds together again.
fn rechain(lines: &mut [String], from: usize) {
    for index in from..lines.len() {
        let (mut body, _) = body(&lines[index]);
        if index > 0 {
            let (_, prev_hash) = self::body(&lines[index - 1]);
            let at = body.find("\"prev\":\"").unwrap() + 8;
            body.replace_range(at..at + 64, &prev_hash);
        }
        let hash = hash(&body);
        lines[index] = format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]);
    }
}

/// The problems as (kind, line).
fn found(report: &AuditReport) -> Vec<(ProblemKind, Option<u64>)> {
    report.problems.iter().map(|p| (p.kind, p.line)).collect()
}

#[test]
fn an_untouched_log_verifies_against_its_kept_checkpoint() {
    let audited = Audited::new(5);
    let report = audited.verify(&[&audited.kept], &[]);
    assert!(report.is_clean(), "{:#?}", report.problems);
    assert_eq!(report.records, 10);
    assert_eq!(report.kept_checkpoints, 1);
    // my own hash agrees with the library's on every line
    for line in audited.lines() {
        let (body, stated) = body(&line);
        assert_eq!(hash(&body), stated);
    }
}

#[test]
fn a_rewritten_field_is_named_by_its_line() {
    let audited = Audited::new(5);
    let mut lines = audited.lines();
    assert!(lines[4].contains("\"op\":\"archive\""));
    lines[4] = lines[4].replace("\"op\":\"archive\"", "\"op\":\"delete\"");
    audited.write_lines(&lines);
    let report = audited.verify(&[], &[]);
    assert_eq!(found(&report), [(ProblemKind::Rewritten, Some(5))]);
    assert!(report.problems[0].message.contains("line 5"));
}

#[test]
fn a_rewritten_line_with_a_fresh_hash_is_named_by_its_line() {
    let audited = Audited::new(5);
    let mut lines = audited.lines();
    lines[4] = lines[4].replace("\"actor\":\"root@pam\"", "\"actor\":\"mallory@pbs\"");
    rechain(&mut lines[4..5], 0);
    audited.write_lines(&lines);
    let report = audited.verify(&[], &[]);
    assert_eq!(found(&report), [(ProblemKind::Rewritten, Some(5))]);
}

#[test]
fn a_removed_line_is_named_by_its_line() {
    let audited = Audited::new(5);
    let mut lines = audited.lines();
    lines.remove(4);
    audited.write_lines(&lines);
    let report = audited.verify(&[], &[]);
    // and the outcome whose intent went with it
    assert_eq!(
        found(&report),
        [
            (ProblemKind::Removed, Some(5)),
            (ProblemKind::OrphanOutcome, Some(5)),
        ],
        "{:#?}",
        report.problems
    );
    assert!(report.problems[0].message.contains("seq 5 removed"));
}

#[test]
fn an_inserted_line_is_named_by_its_line() {
    let audited = Audited::new(5);
    let mut lines = audited.lines();
    // a forged record that fits after line 4 in every field
    let mut forged = lines[4].replace("\"op\":\"archive\"", "\"op\":\"delete\"");
    let (body, _) = body(&forged);
    forged = format!("{},\"hash\":\"{}\"}}", &body[..body.len() - 1], hash(&body));
    lines.insert(4, forged);
    audited.write_lines(&lines);
    let report = audited.verify(&[], &[]);
    let problems = found(&report);
    assert_eq!(
        problems[0],
        (ProblemKind::Inserted, Some(5)),
        "{:#?}",
        report.problems
    );
}

#[test]
fn swapped_lines_are_named_by_their_lines() {
    let audited = Audited::new(5);
    let mut lines = audited.lines();
    lines.swap(4, 5);
    audited.write_lines(&lines);
    let report = audited.verify(&[], &[]);
    let reordered: Vec<Option<u64>> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Reordered)
        .map(|p| p.line)
        .collect();
    assert_eq!(
        reordered,
        [Some(5), Some(6), Some(7)],
        "{:#?}",
        report.problems
    );
}

#[test]
fn a_truncated_tail_is_proven_by_the_stored_checkpoint() {
    let audited = Audited::new(5);
    let lines = audited.lines();
    audited.write_lines(&lines[..8]);
    let report = audited.verify(&[], &[]);
    assert_eq!(found(&report), [(ProblemKind::Truncated, Some(9))]);
    assert!(
        report.problems[0]
            .message
            .contains("lines 9..10 are missing"),
        "{}",
        report.problems[0].message
    );
}

#[test]
fn a_truncation_the_host_re_signed_is_proven_by_a_kept_checkpoint() {
    let audited = Audited::new(5);
    let lines = audited.lines();
    audited.write_lines(&lines[..6]);
    audited.resign();
    // on the host alone nothing is wrong any more
    assert!(audited.verify(&[], &[]).is_clean());
    // the checkpoint kept elsewhere proves the cut
    let report = audited.verify(&[&audited.kept], &[]);
    assert_eq!(found(&report), [(ProblemKind::Truncated, Some(7))]);
    assert!(
        report.problems[0]
            .message
            .contains("kept checkpoint 1 (size 10) proves 10"),
        "{}",
        report.problems[0].message
    );
}

#[test]
fn a_rewritten_chain_the_host_re_signed_is_proven_by_a_kept_checkpoint() {
    let audited = Audited::new(5);
    let mut lines = audited.lines();
    lines[2] = lines[2].replace("\"key-0\"", "\"key-9\"");
    rechain(&mut lines, 2);
    audited.write_lines(&lines);
    audited.resign();
    assert!(audited.verify(&[], &[]).is_clean());
    let report = audited.verify(&[&audited.kept], &[]);
    assert_eq!(
        found(&report),
        [(ProblemKind::CheckpointMismatch, Some(10))]
    );
}

#[test]
fn a_log_replaced_by_another_keys_chain_is_a_foreign_signature() {
    let audited = Audited::new(5);
    let vkey = audited.log().verifier_key().unwrap().unwrap();
    // other operations, written by another store with its own key
    let other = Audited::with_ids(5, "other");
    for name in ["log", "checkpoint", "signing.key"] {
        std::fs::copy(other.audit_path(name), audited.audit_path(name)).unwrap();
    }
    // the host alone sees a valid chain under a valid signature
    assert!(audited.verify(&[], &[]).is_clean());

    let report = audited.verify(&[&audited.kept], &[&vkey]);
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::ForeignKey,
            ProblemKind::CheckpointMismatch,
            ProblemKind::UntrustedKey
        ],
        "{:#?}",
        report.problems
    );
    assert!(report.problems[0].message.contains("kept checkpoint 1"));
    assert!(
        report.problems[0]
            .message
            .contains("signed by a trusted key")
    );
    assert_eq!(report.problems[1].line, Some(10));
}

#[test]
fn a_log_and_checkpoint_of_another_store_under_this_key_are_foreign() {
    let audited = Audited::new(5);
    let other = Audited::new(5);
    for name in ["log", "checkpoint"] {
        std::fs::copy(other.audit_path(name), audited.audit_path(name)).unwrap();
    }
    let report = audited.verify(&[], &[]);
    assert_eq!(found(&report), [(ProblemKind::ForeignKey, None)]);
    assert!(
        report.problems[0]
            .message
            .contains("not by this store's key")
    );
}

#[test]
fn an_altered_checkpoint_does_not_verify() {
    let audited = Audited::new(5);
    let kept = audited.kept.replacen("\n10\n", "\n11\n", 1);
    let report = audited.verify(&[&kept], &[]);
    assert_eq!(found(&report)[0], (ProblemKind::BadSignature, None));

    let stored = std::fs::read_to_string(audited.audit_path("checkpoint")).unwrap();
    let head = stored.lines().nth(2).unwrap().to_string();
    let forged = stored.replacen(&head, &STANDARD.encode([0u8; 32]), 1);
    std::fs::write(audited.audit_path("checkpoint"), forged).unwrap();
    let report = audited.verify(&[], &[]);
    assert_eq!(found(&report), [(ProblemKind::BadSignature, None)]);
}

#[test]
fn a_kept_checkpoint_in_syslog_form_is_read() {
    let audited = Audited::new(2);
    let checkpoint = audited.log().stored_checkpoint().unwrap().unwrap();
    let line = format!(
        "Nov 29 15:10:43 pbs1 pbs-keystore-audit[4242]: {}",
        checkpoint.to_line().unwrap()
    );
    let lines = audited.lines();
    audited.write_lines(&lines[..2]);
    audited.resign();
    let report = audited.verify(&[&line], &[]);
    assert_eq!(found(&report), [(ProblemKind::Truncated, Some(3))]);
}

/// Records hold ids, fingerprints and our own error texts only: the errors
/// of failed key operations (a wrong passphrase, a corrupt key file, a
/// duplicate key) name ids, paths and fingerprints, never key bytes or
/// passphrases. Each error is recorded as an outcome, then the whole log
/// is searched for every encoding of every key and the passphrase.
#[test]
fn no_record_holds_a_secret_not_even_in_an_error() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    let log = AuditLog::open_store(&dir.config)
        .unwrap()
        .syslog_socket(None);
    let caller = Caller::api(
        "alice@pbs!automation".parse().unwrap(),
        "192.0.2.7".parse().unwrap(),
    );
    let passphrase = b"correct horse battery staple";
    let protected = KeyConfig::with_key(&raw_key(7), passphrase, Kdf::Scrypt).unwrap();
    let plain = key_config(8);
    let mut needles: Vec<String> = Vec::new();
    for raw in [raw_key(7), raw_key(8)] {
        needles.push(hex::encode(raw));
        needles.push(STANDARD.encode(raw));
        needles.extend(raw.chunks(8).map(hex::encode));
    }
    needles.push(String::from_utf8(passphrase.to_vec()).unwrap());
    needles.push(STANDARD.encode(&protected.data));
    needles.push(STANDARD.encode(&plain.data));

    let record = |op: Op, id: &str, fingerprint, result: Result<(), anyhow::Error>| {
        let mut event = Event::new(&caller, op).id(id).job("job1");
        if let Some(fp) = fingerprint {
            event = event.fingerprint(fp);
        }
        let pending = log.intent(&event).unwrap();
        let _ = pending.done(result);
    };

    // a wrong passphrase
    let wrong = || -> Result<Vec<u8>, anyhow::Error> { Ok(b"wrong".to_vec()) };
    let err = protected.decrypt(&wrong).map(|_| ());
    assert!(err.is_err());
    record(Op::Export, "k-prot", protected.fingerprint, err);
    // a stored key (which records itself), then the same key again
    keys.store_key("k-plain", &plain).unwrap();
    let err = keys.store_key("k-again", &plain).map(|_| ());
    assert!(err.is_err());
    record(Op::Import, "k-again", plain.fingerprint, err);
    // a corrupt key file
    let path = keys.key_path("k-plain");
    let text = std::fs::read_to_string(&path).unwrap();
    let data = STANDARD.encode(&plain.data);
    assert!(text.contains(&data));
    std::fs::write(&path, text.replacen(&data, &format!("AAAA{data}"), 1)).unwrap();
    let err = keys.load_key_config("k-plain", false).map(|_| ());
    assert!(err.is_err());
    record(Op::Restore, "k-plain", plain.fingerprint, err);

    let text = std::fs::read_to_string(dir.path().join("encryption-keys/.audit/log")).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert!(text.contains("wrong passphrase"), "{text}");
    assert!(text.contains("k-again"));
    for needle in &needles {
        assert!(
            !text.contains(needle.as_str()),
            "the audit log holds a secret: {needle}"
        );
    }
    let origin = Origin::Api("192.0.2.7".parse().unwrap()).to_string();
    assert!(text.contains(&format!("\"origin\":\"{origin}\"")));
    assert!(text.contains("\"actor\":\"alice@pbs!automation\""));
}

/// The store's `verify` leaves `.audit/` to `audit verify`; anything else
/// by that name is still a stranger in the key directory.
#[test]
fn the_store_verify_leaves_the_audit_directory_alone() {
    let audited = Audited::new(2);
    let keys = audited.dir.config.encryption_keys();
    keys.store_key("k-one", &key_config(40)).unwrap();
    let report = audited.dir.config.verify(false).unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);

    let audit_dir = keys.key_dir().join(".audit");
    std::fs::remove_dir_all(&audit_dir).unwrap();
    std::fs::write(&audit_dir, b"not a directory").unwrap();
    let report = audited.dir.config.verify(false).unwrap();
    let kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [pbs_config::verify::FindingKind::UnknownFile]);
}

/// The ids and fingerprints of `report`'s unrecorded keys.
fn unrecorded(report: &AuditReport) -> Vec<(String, String)> {
    report
        .unrecorded
        .iter()
        .map(|key| (key.id.clone(), key.fingerprint.clone()))
        .collect()
}

#[test]
fn keys_of_a_removed_log_stay_listed_as_unrecorded_after_a_new_log_begins() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    let fingerprint = |seed| key_config(seed).fingerprint.unwrap().signature();
    keys.store_key("k-one", &key_config(50)).unwrap();
    keys.store_key("k-two", &key_config(51)).unwrap();
    let log = AuditLog::open_existing(&dir.config).unwrap().unwrap();
    let report = log.verify(&VerifyOptions::default()).unwrap();
    assert!(
        report.is_clean() && report.unrecorded.is_empty(),
        "{report:#?}"
    );

    // the whole history removed: without a log, every listed key is
    // unrecorded, and that alone is no problem (a store taken over from
    // upstream looks the same)
    std::fs::remove_dir_all(keys.key_dir().join(".audit")).unwrap();
    assert!(AuditLog::open_existing(&dir.config).unwrap().is_none());
    let report = AuditReport::without_log(&dir.config, &VerifyOptions::default()).unwrap();
    let both = vec![
        ("k-one".to_string(), fingerprint(50)),
        ("k-two".to_string(), fingerprint(51)),
    ];
    assert_eq!(unrecorded(&report), both);
    assert!(report.is_clean(), "{report:#?}");

    // a new log begins with the next operation: the keys it does not name
    // stay listed, so the removal is still seen
    keys.store_key("k-three", &key_config(52)).unwrap();
    let log = AuditLog::open_existing(&dir.config).unwrap().unwrap();
    let report = log.verify(&VerifyOptions::default()).unwrap();
    assert_eq!(report.records, 2, "{report:#?}");
    assert_eq!(unrecorded(&report), both);

    // a key is matched by its fingerprint, not its id: a record of k-one's
    // fingerprint under another id names it
    let event = Event::new(&Caller::cli(), Op::Export)
        .id("some-other-id")
        .fingerprint(key_config(50).fingerprint.unwrap());
    log.intent(&event)
        .unwrap()
        .done(Ok::<_, anyhow::Error>(()))
        .unwrap();
    let report = log.verify(&VerifyOptions::default()).unwrap();
    assert_eq!(unrecorded(&report), both[1..]);
}

/// The Python that runs the recipe: Debian's, where `python3-cryptography`
/// installs, unless `PYTHON3` names another.
fn python() -> std::path::PathBuf {
    if let Some(python) = std::env::var_os("PYTHON3") {
        return python.into();
    }
    let debian = std::path::PathBuf::from("/usr/bin/python3");
    if debian.exists() {
        debian
    } else {
        "python3".into()
    }
}

fn recipe() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/check_audit_log.py")
}

/// Runs the recipe on `audited`'s log with `args`: exit status and output.
fn run_recipe(audited: &Audited, args: &[&str]) -> (i32, String) {
    let output = std::process::Command::new(python())
        .arg(recipe())
        .arg(audited.audit_path("log"))
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {:?} - {err}", python()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("No module named 'cryptography'"),
        "install python3-cryptography"
    );
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &stderr,
    )
}

/// docs/audit.md's recipe, with standard tools only, finds what `audit
/// verify` finds: a log and a kept checkpoint that agree, a rewritten
/// field, a truncation the host re-signed, a checkpoint of another key.
#[test]
fn the_documented_recipe_checks_a_log_against_a_kept_checkpoint() {
    let audited = Audited::new(5);
    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("kept");
    std::fs::write(&kept, &audited.kept).unwrap();
    let kept = kept.to_str().unwrap();
    let vkey = audited.log().verifier_key().unwrap().unwrap();
    let with_kept = ["--checkpoint", kept, "--verifier-key", vkey.as_str()];

    let (code, out) = run_recipe(&audited, &with_kept);
    assert_eq!((code, out.as_str()), (0, "10 records, 0 problems\n"));

    // the syslog form of the same checkpoint
    let line = tmp.path().join("line");
    let checkpoint = pbs_config::audit::Checkpoint::parse(&audited.kept).unwrap();
    std::fs::write(
        &line,
        format!("Nov 29 pbs1 x[1]: {}\n", checkpoint.to_line().unwrap()),
    )
    .unwrap();
    let (code, _) = run_recipe(
        &audited,
        &[
            "--checkpoint",
            line.to_str().unwrap(),
            "--verifier-key",
            &vkey,
        ],
    );
    assert_eq!(code, 0);

    // another store's verifier key
    let other = Audited::with_ids(1, "other");
    let other_vkey = other.log().verifier_key().unwrap().unwrap();
    let (code, out) = run_recipe(
        &audited,
        &["--checkpoint", kept, "--verifier-key", &other_vkey],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not signed by"), "{out}");

    // a rewritten field
    let good = audited.lines();
    let mut lines = good.clone();
    lines[4] = lines[4].replace("\"op\":\"archive\"", "\"op\":\"delete\"");
    audited.write_lines(&lines);
    let (code, out) = run_recipe(&audited, &[]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "line 5: was changed after it was written\n10 records, 1 problems\n"
        )
    );

    // cut and re-signed: only the kept checkpoint tells
    audited.write_lines(&good[..6]);
    audited.resign();
    assert_eq!(run_recipe(&audited, &[]).0, 0);
    let (code, out) = run_recipe(&audited, &with_kept);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("line 7: missing (the checkpoint proves 10 records, the log has 6)"),
        "{out}"
    );
}

#[test]
fn documented_recipe_is_the_tested_one() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/audit.md"),
    )
    .unwrap();
    let script = std::fs::read_to_string(recipe()).unwrap();
    let start = doc
        .find("```python\n")
        .expect("a python block in docs/audit.md")
        + 10;
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    assert!(block.contains("def chain(") && block.contains("def verify_checkpoint("));
    assert!(
        script.contains(block),
        "docs/audit.md's recipe differs from tests/tools/check_audit_log.py"
    );
}

/// The quoted names in `text` that are operation names.
fn named_ops(text: &str, quote: char) -> Vec<String> {
    let known: Vec<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
    text.split(quote)
        .skip(1)
        .step_by(2)
        .filter(|name| known.contains(name))
        .map(str::to_string)
        .collect()
}

/// Every operation the log can hold is listed in docs/audit.md and offered
/// by the web page's operation filter: a new operation cannot be recorded
/// but missing from what an administrator reads or can filter by.
#[test]
fn every_operation_is_documented_and_filterable() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all: Vec<String> = Op::ALL.iter().map(|op| op.as_str().to_string()).collect();
    all.sort();
    let doc = std::fs::read_to_string(root.join("docs/audit.md")).unwrap();
    let start = doc
        .find("Operations: ")
        .expect("docs/audit.md lists the operations");
    let end = start + doc[start..].find("Readers accept").unwrap();
    let mut documented = named_ops(&doc[start..end], '`');
    documented.sort();
    assert_eq!(documented, all, "docs/audit.md's list of operations");
    let page = std::fs::read_to_string(root.join("src/www/js/audit.js")).unwrap();
    let start = page
        .find("const OPERATIONS = [")
        .expect("the filter's operations");
    let end = start + page[start..].find("];").unwrap();
    let mut offered = named_ops(&page[start..end], '\'');
    offered.sort();
    assert_eq!(offered, all, "the operations the web page's filter offers");
}

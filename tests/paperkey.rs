//! Paperkeys of upstream's key files (`../shared/vectors/keys`): every key
//! file that loads reads back from its printed paperkey, from the block and
//! from the typing aid alone; and a paperkey of upstream's exact layout
//! (what `proxmox-backup-client key paperkey` prints) is read too.

use pbs_key_config::KeyConfig;
use pbs_key_config::paperkey::{Paperkey, parse_key_file_or_paperkey, parse_paperkey};

use pbs_test_kit::dirs::{cases_with_suffix, vectors_dir};

#[test]
fn key_vectors_read_back_from_their_paperkeys() {
    let dir = vectors_dir().join("keys");
    let mut checked = 0;
    for case in cases_with_suffix(&dir, ".enc") {
        let Ok(key_config) = KeyConfig::load(dir.join(format!("{case}.enc"))) else {
            continue;
        };
        let Ok(paperkey) = Paperkey::new(&case.replace('_', "-"), &key_config, None) else {
            // an unprotected key whose stored fingerprint is another key's
            assert_eq!(case, "wrong-fingerprint");
            continue;
        };
        let text = paperkey.to_text().unwrap();
        assert_eq!(parse_paperkey(&text).unwrap(), key_config, "{case}");
        let typed = paperkey.typing_aid().unwrap().join("\n");
        assert_eq!(parse_paperkey(&typed).unwrap(), key_config, "{case}");
        let html = paperkey.to_html().unwrap();
        assert!(html.contains("<svg"), "{case}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} key vectors checked");
}

#[test]
fn upstream_paperkey_text_is_read() {
    let dir = vectors_dir().join("keys");
    let key_config = KeyConfig::load(dir.join("pbkdf2-with-hint.enc")).unwrap();
    // upstream's text layout: subject, block, QR code (here a stand-in)
    let text = format!(
        "Subject: my key\n\n-----BEGIN PROXMOX BACKUP KEY-----\n{}\n-----END PROXMOX BACKUP KEY-----\n\u{2588}\u{2580}\n",
        serde_json::to_string_pretty(&key_config).unwrap()
    );
    assert_eq!(parse_paperkey(&text).unwrap(), key_config);
    assert_eq!(parse_key_file_or_paperkey(&text).unwrap(), key_config);
}

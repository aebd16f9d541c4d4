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

/// The print pages of upstream's web interfaces (PBS's encryption keys,
/// PVE's and PMG's storage keys) put the END marker and the closing tag of
/// the paragraph on one line (`-----END PROXMOX BACKUP KEY-----</p>`), and
/// upstream's `key paperkey --output-format html` the markers on lines of
/// their own inside `<p>`: the source of either page reads back to its
/// key, as it did before markers had to stand on lines of their own.
#[test]
fn upstream_paperkey_html_is_read() {
    let dir = vectors_dir().join("keys");
    let key_config = KeyConfig::load(dir.join("pbkdf2-with-hint.enc")).unwrap();
    let pretty = serde_json::to_string_pretty(&key_config).unwrap();
    let gui = format!(
        "<html><head></head><body style=\"padding: 5px;\">\n\t<h4>Encryption Key 'k1' \
         (ab:cd:ef:01:23:45:67:89)</h4>\n<p style=\"font-size:1.2em;font-family:monospace;\
         white-space:pre-wrap;overflow-wrap:break-word;\">\n-----BEGIN PROXMOX BACKUP KEY-----\n\
         {pretty}\n-----END PROXMOX BACKUP KEY-----</p>\n\t<center><img src=\"data:\"></center>\n\
         \t</body></html>"
    );
    assert_eq!(parse_paperkey(&gui).unwrap(), key_config);
    let cli = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<body>\n<p>Subject: my key</p>\n\
         <div style=\"page-break-inside: avoid\">\n<p>\n-----BEGIN PROXMOX BACKUP KEY-----\n\
         {pretty}\n-----END PROXMOX BACKUP KEY-----\n</p>\n<center>\n<img\n</center>\n</div>\n\
         </body>\n</html>\n"
    );
    assert_eq!(parse_paperkey(&cli).unwrap(), key_config);
    assert_eq!(parse_key_file_or_paperkey(&gui).unwrap(), key_config);
}

//! Encryption key types: [`Kdf`], [`Fingerprint`], [`KeyInfo`], [`CryptKey`].

use std::fmt;
use std::str::FromStr;

use anyhow::{Error, bail};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use proxmox_schema::{
    AllOfSchema, ApiStringFormat, ApiType, EnumEntry, IntegerSchema, ObjectSchema, Schema,
    StringSchema,
};

use crate::flatten::struct_with_flattened;
use crate::{CERT_FINGERPRINT_SHA256_SCHEMA, CONFIG_TEXT_FORMAT, PROXMOX_SAFE_ID_FORMAT};

/// Id of an encryption key: a safe id of 3 to 32 characters.
pub const CRYPT_KEY_ID_SCHEMA: Schema = StringSchema::new("Encryption key ID.")
    .format(&PROXMOX_SAFE_ID_FORMAT)
    .min_length(3)
    .max_length(32)
    .schema();

/// Key derivation function for password protected encryption keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kdf {
    /// Do not encrypt the key.
    None,
    /// Encrypt the key with a password using scrypt.
    #[default]
    Scrypt,
    /// Encrypt the key with a password using PBKDF2.
    PBKDF2,
}

impl Kdf {
    /// The wire name (`none`, `scrypt`, `pbkdf2`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Kdf::None => "none",
            Kdf::Scrypt => "scrypt",
            Kdf::PBKDF2 => "pbkdf2",
        }
    }
}

impl fmt::Display for Kdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ApiType for Kdf {
    const API_SCHEMA: Schema =
        StringSchema::new("Key derivation function for password protected encryption keys.")
            .format(&ApiStringFormat::Enum(&[
                EnumEntry::new("none", "Do not encrypt the key."),
                EnumEntry::new("scrypt", "Encrypt the key with a password using scrypt."),
                EnumEntry::new("pbkdf2", "Encrypt the key with a password using PBKDF2."),
            ]))
            .default("scrypt")
            .schema();
}

/// A 32-byte key fingerprint (SHA-256 based, see `pbs-key-config`).
///
/// As upstream: [`Display`](fmt::Display) shows the short form (first 8
/// bytes), which error messages use; [`Fingerprint::signature`] is the full
/// form stored in `encryption-keys.cfg`. Parsing accepts either letter case,
/// with or without colons:
///
/// ```
/// use pbs_api_types::Fingerprint;
///
/// let fp: Fingerprint = "0EABD4460B6EB9CA345023DEE2B778C790E54A1683B9659C0A57AE199090159B"
///     .parse()
///     .unwrap();
/// assert_eq!(fp.to_string(), "0e:ab:d4:46:0b:6e:b9:ca");
/// assert_eq!(
///     fp.signature(),
///     "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b",
/// );
/// assert_eq!(fp.signature().parse::<Fingerprint>().unwrap(), fp);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    bytes: [u8; 32],
}

impl Fingerprint {
    /// A fingerprint of the given bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// All 32 bytes as lowercase, colon separated hex.
    pub fn signature(&self) -> String {
        as_fingerprint(&self.bytes)
    }
}

fn as_fingerprint(bytes: &[u8]) -> String {
    let mut out = [0u8; 95];
    let len = write_fingerprint(bytes, &mut out);
    std::str::from_utf8(&out[..len])
        .expect("hex digits and colons")
        .to_string()
}

/// `bytes` as lowercase hex pairs separated by colons, into `out` (3
/// bytes per byte, less one); returns the length written. Without an
/// allocation per byte: a list serializes one fingerprint per key.
fn write_fingerprint(bytes: &[u8], out: &mut [u8; 95]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in bytes.iter().take(32).enumerate() {
        out[3 * i] = HEX[usize::from(byte >> 4)];
        out[3 * i + 1] = HEX[usize::from(byte & 0x0f)];
        if i < 31 {
            out[3 * i + 2] = b':';
        }
    }
    (bytes.len().min(32) * 3).saturating_sub(1)
}

impl fmt::Display for Fingerprint {
    /// The short form: the first 8 bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&as_fingerprint(&self.bytes[..8]))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.signature())
    }
}

/// The value of each byte as a hex digit, 0xff where it is none.
const NIBBLES: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        table[b"0123456789ABCDEF"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The canonical form "aa:bb:..." (either case), decoded without early
/// exits so the compiler unrolls it: every config parse reads one
/// fingerprint per key.
fn canonical(text: &[u8; 95]) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    // a nibble of 0xff, or a separator that is not ':', sets high bits
    let mut bad = 0u8;
    for (i, out) in bytes.iter_mut().enumerate() {
        let high = NIBBLES[text[3 * i] as usize];
        let low = NIBBLES[text[3 * i + 1] as usize];
        bad |= high | low;
        if i < 31 {
            bad |= u8::from(text[3 * i + 2] != b':') << 4;
        }
        *out = (high << 4) | (low & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(bytes)
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        fn byte(high: u8, low: u8) -> Option<u8> {
            Some(nibble(high)? << 4 | nibble(low)?)
        }

        let text = text.as_bytes();
        let mut bytes = [0u8; 32];
        // the canonical form "aa:bb:...", and the bare 64 digits
        let ok = match text.len() {
            95 => canonical(text.try_into().expect("95 bytes"))
                .map(|parsed| bytes = parsed)
                .is_some(),
            64 => text
                .chunks(2)
                .zip(bytes.iter_mut())
                .all(|(pair, out)| byte(pair[0], pair[1]).map(|b| *out = b).is_some()),
            _ => false,
        };
        if ok {
            return Ok(Self { bytes });
        }

        // anything else: colons anywhere, as upstream (which drops them all)
        let digits: Vec<u8> = text.iter().copied().filter(|c| *c != b':').collect();
        if digits.len() != 64 {
            bail!(
                "invalid fingerprint - expected 32 bytes of hex (64 digits, colons optional), got {} digits",
                digits.len()
            );
        }
        for (pair, out) in digits.chunks(2).zip(bytes.iter_mut()) {
            match byte(pair[0], pair[1]) {
                Some(b) => *out = b,
                None => bail!("invalid fingerprint - contains a character that is not a hex digit"),
            }
        }
        Ok(Self { bytes })
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // the signature, from the stack
        let mut out = [0u8; 95];
        let len = write_fingerprint(&self.bytes, &mut out);
        serializer.serialize_str(std::str::from_utf8(&out[..len]).expect("hex digits and colons"))
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Parses the text where it is: a config read lends it, so no copy.
        struct FingerprintVisitor;

        impl serde::de::Visitor<'_> for FingerprintVisitor {
            type Value = Fingerprint;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Fingerprint, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(FingerprintVisitor)
    }
}

impl ApiType for Fingerprint {
    const API_SCHEMA: Schema = CERT_FINGERPRINT_SHA256_SCHEMA;
}

/// Free text stored in the config (path, hint): one line, not padded.
const CONFIG_TEXT_SCHEMA_PATH: Schema = StringSchema::new("Path to key (if stored in a file).")
    .format(&CONFIG_TEXT_FORMAT)
    .schema();

/// Password hint as stored in the config (one line, not padded): what a
/// key to store must have as its hint.
pub const KEY_HINT_SCHEMA: Schema = StringSchema::new("Password hint.")
    .format(&CONFIG_TEXT_FORMAT)
    .schema();

/// The `kdf` property as the config file schema sees it: any word.
///
/// Upstream's section-config parser accepts an unknown kdf (the
/// `kdf-unknown-value` vector) and only the typed [`KeyInfo`] refuses it, so
/// the value is checked by serde, not by the schema.
const KDF_PROPERTY_SCHEMA: Schema =
    StringSchema::new("Key derivation function (none, scrypt or pbkdf2).")
        .format(&CONFIG_TEXT_FORMAT)
        .schema();

const CREATED_SCHEMA: Schema = IntegerSchema::new("Key creation time (epoch).").schema();
const MODIFIED_SCHEMA: Schema = IntegerSchema::new("Key modification time (epoch).").schema();
const ARCHIVED_AT_SCHEMA: Schema =
    IntegerSchema::new("Time the key was archived (epoch); absent for an active key.").schema();

/// Metadata of an encryption key (what `encryption-keys.cfg` stores per key,
/// besides id and archive time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Path to key (if stored in a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Key derivation function.
    pub kdf: Kdf,
    /// Key creation time (epoch).
    pub created: i64,
    /// Key modification time (epoch).
    pub modified: i64,
    /// Key fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Password hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ApiType for KeyInfo {
    const API_SCHEMA: Schema = ObjectSchema::new(
        "Encryption Key Information",
        &[
            ("created", false, &CREATED_SCHEMA),
            ("fingerprint", true, &CERT_FINGERPRINT_SHA256_SCHEMA),
            ("hint", true, &KEY_HINT_SCHEMA),
            ("kdf", false, &KDF_PROPERTY_SCHEMA),
            ("modified", false, &MODIFIED_SCHEMA),
            ("path", true, &CONFIG_TEXT_SCHEMA_PATH),
        ],
    )
    .schema();
}

struct_with_flattened! {
    flatten info: KeyInfo;
    /// An encryption key's entry in `encryption-keys.cfg`: id, metadata and
    /// archive time.
    ///
    /// On the wire the metadata is flattened into the same object as `id`
    /// and `archived-at`. `Serialize` is derived; `Deserialize` is what the
    /// derive would give, made by [`struct_with_flattened!`] from this
    /// declaration without the derive's buffering of every value. Readers
    /// of `encryption-keys.cfg` go through it too (see
    /// `proxmox_section_config::de`), so a field is declared here and in
    /// the schema below, nowhere else.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct CryptKey {
        /// Key id.
        pub id: String,
        /// Key metadata.
        #[serde(flatten)]
        pub info: KeyInfo,
        /// Time the key was archived (epoch); `None` for an active key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub archived_at: Option<i64>,
    }
}

const CRYPT_KEY_OWN_SCHEMA: Schema = ObjectSchema::new(
    "Encryption key id and archive state.",
    &[
        ("archived-at", true, &ARCHIVED_AT_SCHEMA),
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
    ],
)
.schema();

impl ApiType for CryptKey {
    const API_SCHEMA: Schema = AllOfSchema::new(
        "Encryption key with metadata.",
        &[&CRYPT_KEY_OWN_SCHEMA, &KeyInfo::API_SCHEMA],
    )
    .schema();
}

impl CryptKey {
    /// Whether the key is archived.
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KNOWN: &str = "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b";

    #[test]
    fn fingerprint_parses_all_spellings_to_the_same_bytes() {
        let fp: Fingerprint = KNOWN.parse().unwrap();
        for spelling in [
            KNOWN.to_uppercase(),
            KNOWN.replace(':', ""),
            KNOWN.replace(':', "").to_uppercase(),
        ] {
            assert_eq!(spelling.parse::<Fingerprint>().unwrap(), fp, "{spelling}");
        }
        assert_eq!(fp.bytes()[0], 0x0e);
        assert_eq!(fp.to_string(), "0e:ab:d4:46:0b:6e:b9:ca");
    }

    /// The canonical form decoded the plain way, to check [`canonical`].
    fn canonical_reference(text: &[u8]) -> Option<[u8; 32]> {
        if text.len() != 95 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, out) in bytes.iter_mut().enumerate() {
            if i < 31 && text[3 * i + 2] != b':' {
                return None;
            }
            let pair = std::str::from_utf8(&text[3 * i..3 * i + 2]).ok()?;
            if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            *out = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(bytes)
    }

    #[test]
    fn canonical_fingerprint_decoding_agrees_with_the_plain_one() {
        let mut cases = vec![KNOWN.to_string(), KNOWN.to_uppercase()];
        for i in 0..KNOWN.len() {
            for c in [
                '0', '9', 'a', 'f', 'A', 'F', 'g', 'G', '/', ':', ';', '@', '`', ' ',
            ] {
                let mut s: Vec<char> = KNOWN.chars().collect();
                s[i] = c;
                cases.push(s.into_iter().collect());
            }
        }
        for case in cases {
            let text: &[u8; 95] = case.as_bytes().try_into().unwrap();
            assert_eq!(canonical(text), canonical_reference(text), "{case:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_fingerprint_decoding_agrees_on_any_bytes(text in proptest::collection::vec(proptest::prelude::any::<u8>(), 95)) {
            let text: &[u8; 95] = text.as_slice().try_into().unwrap();
            proptest::prop_assert_eq!(canonical(text), canonical_reference(text));
        }
    }

    #[test]
    fn fingerprint_accepts_colons_anywhere_as_upstream() {
        let fp: Fingerprint = KNOWN.parse().unwrap();
        let odd = format!(
            "{}:{}",
            &KNOWN.replace(':', "")[..10],
            &KNOWN.replace(':', "")[10..]
        );
        assert_eq!(odd.parse::<Fingerprint>().unwrap(), fp);
        assert!(
            format!("{}:", KNOWN.replace(':', ""))
                .parse::<Fingerprint>()
                .is_ok()
        );
    }

    #[test]
    fn fingerprint_rejects_wrong_length_and_non_hex() {
        assert!(KNOWN[..KNOWN.len() - 3].parse::<Fingerprint>().is_err());
        assert!(format!("{KNOWN}:00").parse::<Fingerprint>().is_err());
        let err = KNOWN
            .replace("0e", "0g")
            .parse::<Fingerprint>()
            .unwrap_err();
        assert!(err.to_string().contains("hex"), "{err}");
        assert!("".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn fingerprint_serializes_as_signature() {
        let fp: Fingerprint = KNOWN.parse().unwrap();
        assert_eq!(serde_json::to_value(fp).unwrap(), json!(KNOWN));
        let back: Fingerprint = serde_json::from_value(json!(KNOWN.to_uppercase())).unwrap();
        assert_eq!(back, fp);
    }

    proptest::proptest! {
        #[test]
        fn any_fingerprint_serializes_as_its_hex_pairs(bytes in proptest::prelude::any::<[u8; 32]>()) {
            let fp = Fingerprint::new(bytes);
            let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let text = pairs.join(":");
            proptest::prop_assert_eq!(serde_json::to_value(fp).unwrap(), json!(text));
            proptest::prop_assert_eq!(fp.signature(), text);
            // the short form: the first 8 bytes
            proptest::prop_assert_eq!(fp.to_string(), pairs[..8].join(":"));
        }
    }

    #[test]
    fn kdf_is_lowercase_on_the_wire_and_defaults_to_scrypt() {
        assert_eq!(serde_json::to_value(Kdf::PBKDF2).unwrap(), json!("pbkdf2"));
        assert_eq!(
            serde_json::from_value::<Kdf>(json!("none")).unwrap(),
            Kdf::None
        );
        assert_eq!(Kdf::default(), Kdf::Scrypt);
        let err = serde_json::from_value::<Kdf>(json!("aes-magic")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown variant `aes-magic`, expected one of `none`, `scrypt`, `pbkdf2`"
        );
        Kdf::API_SCHEMA.parse_simple_value("pbkdf2").unwrap();
        assert!(Kdf::API_SCHEMA.parse_simple_value("PBKDF2").is_err());
    }

    #[test]
    fn crypt_key_is_kebab_case_with_flattened_info() {
        let key = CryptKey {
            id: "offsite".into(),
            info: KeyInfo {
                path: Some("/etc/proxmox-backup/encryption-keys/offsite.enc".into()),
                kdf: Kdf::None,
                created: 1,
                modified: 2,
                fingerprint: Some(KNOWN.parse().unwrap()),
                hint: None,
            },
            archived_at: Some(3),
        };
        let value = serde_json::to_value(&key).unwrap();
        assert_eq!(
            value,
            json!({
                "id": "offsite",
                "path": "/etc/proxmox-backup/encryption-keys/offsite.enc",
                "kdf": "none",
                "created": 1,
                "modified": 2,
                "fingerprint": KNOWN,
                "archived-at": 3,
            })
        );
        CryptKey::API_SCHEMA.verify_json(&value).unwrap();
        assert_eq!(serde_json::from_value::<CryptKey>(value).unwrap(), key);
    }

    #[test]
    fn crypt_key_id_schema_bounds() {
        for ok in ["abc", "tape.sync_01", &"x".repeat(32)] {
            CRYPT_KEY_ID_SCHEMA.parse_simple_value(ok).unwrap();
        }
        for bad in ["ab", "../x", "a b", "ключ", &"x".repeat(33), "key@home", ""] {
            assert!(
                CRYPT_KEY_ID_SCHEMA.parse_simple_value(bad).is_err(),
                "{bad}"
            );
        }
    }
}

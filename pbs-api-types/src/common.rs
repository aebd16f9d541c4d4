//! Schemas shared by several types: ids, digests, comments.

/// Accepts what [`CONFIG_TEXT_REGEX`] matches; in `proxmox_schema`, where
/// the section-config scan recognizes it.
pub use proxmox_schema::api_types::verify_config_text;
use proxmox_schema::api_types::{SAFE_ID_FORMAT, SHA256_HEX_FORMAT};
use proxmox_schema::{ApiStringFormat, Schema, StringSchema, const_regex};

pub use proxmox_schema::api_types::{
    CERT_FINGERPRINT_SHA256_SCHEMA, SINGLE_LINE_COMMENT_FORMAT, SINGLE_LINE_COMMENT_SCHEMA,
};

/// The safe id format under upstream's pbs-api-types name.
pub const PROXMOX_SAFE_ID_FORMAT: ApiStringFormat = SAFE_ID_FORMAT;

/// SHA-256 digest of a config file, as returned by the list calls.
pub const PROXMOX_CONFIG_DIGEST_SCHEMA: Schema = StringSchema::new(
    "Prevent changes if current configuration file has different SHA256 digest. \
     This can be used to prevent concurrent modifications.",
)
.format(&SHA256_HEX_FORMAT)
.schema();

const_regex! {
    /// One line, no control characters, no leading or trailing whitespace
    /// (the section-config parser trims values, so such whitespace would be
    /// lost in a round trip). [`CONFIG_TEXT_FORMAT`] checks the same with a
    /// byte loop, since it is on the config parse path.
    pub CONFIG_TEXT_REGEX = r"^(?:[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?)?$";
}

/// Format of free text stored as a section-config value: what
/// [`CONFIG_TEXT_REGEX`] matches.
pub const CONFIG_TEXT_FORMAT: ApiStringFormat = ApiStringFormat::VerifyFn(verify_config_text);

/// Datastore name.
pub const DATASTORE_SCHEMA: Schema = StringSchema::new("Datastore name.")
    .format(&PROXMOX_SAFE_ID_FORMAT)
    .min_length(3)
    .max_length(32)
    .schema();

/// Remote name.
pub const REMOTE_ID_SCHEMA: Schema = StringSchema::new("Remote ID.")
    .format(&PROXMOX_SAFE_ID_FORMAT)
    .min_length(3)
    .max_length(32)
    .schema();

/// Job id.
pub const JOB_ID_SCHEMA: Schema = StringSchema::new("Job ID.")
    .format(&PROXMOX_SAFE_ID_FORMAT)
    .min_length(3)
    .max_length(32)
    .schema();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text_refuses_what_a_round_trip_would_change() {
        for ok in [
            "",
            "x",
            "my  dog's name, # 1",
            "a b",
            "ä ö",
            "x\u{a0}y\u{2003}z",
        ] {
            assert!(CONFIG_TEXT_REGEX.is_match(ok), "{ok:?}");
            assert!(verify_config_text(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            " x", "x ", "\tx", "x\u{a0}", "a\nb", "a\u{7f}b", "\u{85}", "\u{3000}",
        ] {
            assert!(!CONFIG_TEXT_REGEX.is_match(bad), "{bad:?}");
            assert!(verify_config_text(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn config_text_verify_fn_agrees_with_the_regex(text in ".{0,12}") {
            proptest::prop_assert_eq!(
                verify_config_text(&text).is_ok(),
                CONFIG_TEXT_REGEX.is_match(&text)
            );
        }
    }
}

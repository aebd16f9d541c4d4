//! [`SectionConfigPlugin`]: one section type and the schema of its properties.

use proxmox_schema::api_types::{verify_config_text, verify_fingerprint_sha256, verify_safe_id};
use proxmox_schema::{
    ApiStringFormat, ApiStringVerifyFn, ObjectPropertyIterator, ObjectSchemaType, Schema,
    SchemaPropertyEntry, StringSchema,
};

/// One section type: its name, the property that holds the section id, and
/// the properties a section of this type may have.
pub struct SectionConfigPlugin {
    type_name: String,
    id_property: Option<String>,
    properties: PluginProperties,
    /// Index (into the sorted property list) and name of each required
    /// property other than the id property.
    required: Vec<(usize, &'static str)>,
    /// How [`SectionConfig::scan`](crate::SectionConfig::scan) checks each
    /// property, by index; `None` if this type has too many properties for
    /// its bit sets (it is then left to the parser).
    scan: Option<ScanPlan>,
}

/// What the fast scan needs of a section type, made once from its schema.
pub(crate) struct ScanPlan {
    /// Per property, by index: its name and how a value is checked.
    pub(crate) checks: Vec<(&'static str, ValueCheck)>,
    /// Per property, by index: the start of its line after the tab.
    pub(crate) keys: Vec<KeyPattern>,
    /// The start of a header line of this type: `TYPE: `.
    pub(crate) header: KeyPattern,
    /// The required properties (other than the id property), as bits.
    pub(crate) required: u64,
    /// Per first byte of a property line after its tab, the index of the
    /// one property whose name starts with it; [`NO_KEY`] where none or
    /// several do (the scan then searches `keys`).
    pub(crate) first_byte: [u8; 256],
    /// Per property, by index: how the in-order path matches and checks
    /// its line ([`InOrder`]).
    pub(crate) in_order: Vec<InOrder>,
}

/// One property of a section read in the writer's order: its line's start
/// (`<tab>KEY `, at most 16 bytes) as a word, and the check of its value
/// in one step. What a step cannot match or decide is left to the general
/// path, from the start of the section.
pub(crate) struct InOrder {
    /// `<tab>KEY ` as a word, zeros after it; a name the pattern cannot
    /// hold (or the parser reads otherwise) has a line feed first, which
    /// no line starts with.
    pub(crate) pattern: u128,
    pub(crate) mask: u128,
    /// Where the value starts in the line: the pattern's length.
    pub(crate) value_at: usize,
    pub(crate) check: InOrderCheck,
}

/// The value checks the in-order path makes itself: one arm each.
pub(crate) enum InOrderCheck {
    /// `isize` text within the bounds ([`parse_isize`]); a value of at
    /// most `digits` ASCII digits alone is within them whatever its digits
    /// ([`in_range_digits`]), so only its digits are checked.
    Integer {
        min: isize,
        max: isize,
        digits: usize,
    },
    /// A fingerprint ([`is_fingerprint`](crate::scan::is_fingerprint):
    /// 95 bytes, a length the bounds take; where they do not, the
    /// property's check is [`InOrderCheck::Other`], which refuses every
    /// value as the parser does).
    Fingerprint,
    /// Config text or a string without format: a length within the
    /// bounds, not starting or ending with a space.
    Text { min: usize, max: usize },
    /// Anything else: [`ValueCheck::check_bytes`] of the property, on a
    /// value neither empty nor padded.
    Other,
}

impl InOrder {
    fn new(name: &str, plain: bool, check: &ValueCheck) -> Self {
        let line = format!("\t{name} ");
        let (pattern, mask) = match plain && line.len() <= 16 {
            true => {
                let mut bytes = [0u8; 16];
                bytes[..line.len()].copy_from_slice(line.as_bytes());
                (
                    u128::from_le_bytes(bytes),
                    u128::MAX >> (8 * (16 - line.len())),
                )
            }
            false => (u128::from(b'\n'), 0xff),
        };
        let check = match check {
            ValueCheck::Integer { min, max } => InOrderCheck::Integer {
                min: *min,
                max: *max,
                digits: in_range_digits(*min, *max),
            },
            ValueCheck::String {
                min,
                max,
                format: FormatCheck::Fingerprint,
            } if (*min..=*max).contains(&95) => InOrderCheck::Fingerprint,
            ValueCheck::String {
                min,
                max,
                format: FormatCheck::ConfigText | FormatCheck::None,
            } => InOrderCheck::Text {
                min: *min,
                max: *max,
            },
            _ => InOrderCheck::Other,
        };
        Self {
            pattern,
            mask,
            value_at: line.len(),
            check,
        }
    }
}

/// A byte of [`ScanPlan::first_byte`] that names no single property.
pub(crate) const NO_KEY: u8 = u8::MAX;

impl SectionConfigPlugin {
    /// A section type named `type_name` whose properties are described by
    /// `properties` (an object or all-of schema, e.g.
    /// `CryptKey::API_SCHEMA.unwrap_all_of_schema()`).
    ///
    /// The id of a section is stored in `id_property` when parsed and is not
    /// written as a property line.
    pub fn new(
        type_name: impl Into<String>,
        id_property: Option<String>,
        properties: &dyn ObjectSchemaType,
    ) -> Self {
        let type_name: String = type_name.into();
        let mut entries: Vec<&'static SchemaPropertyEntry> = properties.properties().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let required: Vec<(usize, &'static str)> = entries
            .iter()
            .enumerate()
            .filter(|(_, (name, optional, _))| !optional && Some(*name) != id_property.as_deref())
            .map(|(index, (name, _, _))| (index, *name))
            .collect();
        let scan = (entries.len() <= 64).then(|| ScanPlan {
            checks: entries
                .iter()
                .map(
                    |(name, _, schema)| match Some(*name) == id_property.as_deref() {
                        // the header id wins over such a line: left to the parser
                        true => (*name, ValueCheck::Unhandled),
                        false => (*name, ValueCheck::of(schema)),
                    },
                )
                .collect(),
            // a name the parser would split or trim differently never
            // matches (such a line is left to the parser)
            keys: entries
                .iter()
                .map(|(name, _, _)| match is_plain_word(name) {
                    true => KeyPattern::new(&format!("{name} ")),
                    false => KeyPattern::new(""),
                })
                .collect(),
            // as the parser reads a header: a letter first, the type up to
            // the first colon, trimmed
            header: match is_plain_word(&type_name)
                && type_name.starts_with(|c: char| c.is_ascii_alphabetic())
                && !type_name.contains(':')
            {
                true => KeyPattern::new(&format!("{type_name}: ")),
                false => KeyPattern::new(""),
            },
            required: required
                .iter()
                .fold(0, |bits, (index, _)| bits | 1 << index),
            first_byte: first_bytes(&entries),
            in_order: Vec::new(),
        });
        let scan = scan.map(|mut plan| {
            plan.in_order = entries
                .iter()
                .zip(&plan.checks)
                .map(|((name, _, _), (_, check))| InOrder::new(name, is_plain_word(name), check))
                .collect();
            plan
        });
        Self {
            type_name,
            id_property,
            required,
            scan,
            properties: PluginProperties {
                description: properties.description(),
                entries,
                additional_properties: properties.additional_properties(),
                default_key: properties.default_key(),
            },
        }
    }

    /// The section type name (`sync-key`).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The property receiving the section id (`id`), if any.
    pub fn id_property(&self) -> Option<&str> {
        self.id_property.as_deref()
    }

    /// The properties of this section type.
    pub fn properties(&self) -> &dyn ObjectSchemaType {
        &self.properties
    }

    /// Looks up a property: its index in the sorted property list and its
    /// schema. `from` is where to look first: the writer puts properties in
    /// list order, so the next one read is nearly always at or after the
    /// previous one's index, a few cheap length-first comparisons away.
    pub(crate) fn lookup_index(&self, key: &str, from: usize) -> Option<(usize, &'static Schema)> {
        let entries = &self.properties.entries;
        let index = entries
            .get(from..)
            .and_then(|rest| rest.iter().position(|(name, _, _)| *name == key))
            .map(|offset| from + offset)
            .or_else(|| self.properties.index_of(key))?;
        Some((index, entries[index].2))
    }

    /// Number of known properties.
    pub(crate) fn property_count(&self) -> usize {
        self.properties.entries.len()
    }

    /// Required properties other than the id property: (index, name).
    pub(crate) fn required_properties(&self) -> &[(usize, &'static str)] {
        &self.required
    }

    /// The schema of the property at `index` of the sorted list.
    pub(crate) fn schema_at(&self, index: usize) -> &'static Schema {
        self.properties.entries[index].2
    }

    /// What the fast scan needs, if it can read this type at all.
    pub(crate) fn scan_plan(&self) -> Option<&ScanPlan> {
        self.scan.as_ref()
    }
}

/// [`ScanPlan::first_byte`] of the sorted properties `entries` (at most
/// 64).
fn first_bytes(entries: &[&'static SchemaPropertyEntry]) -> [u8; 256] {
    let mut table = [NO_KEY; 256];
    let mut count = [0u8; 256];
    for (index, (name, _, _)) in entries.iter().enumerate() {
        if let Some(&first) = name.as_bytes().first() {
            table[first as usize] = index as u8;
            count[first as usize] += 1;
        }
    }
    for (slot, count) in table.iter_mut().zip(count) {
        if count > 1 {
            *slot = NO_KEY;
        }
    }
    table
}

/// Whether `name` is printable ASCII without spaces: what the parser reads
/// back as itself at the start of a line.
fn is_plain_word(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_graphic())
}

/// The start of a line, compared as one 128-bit word with its first 16
/// bytes: `KEY ` (the key and one space) of a property line after its
/// tab, `TYPE: ` of a header. One of more than 16 bytes never matches
/// (the scan leaves such lines to its slower search).
pub(crate) struct KeyPattern {
    bytes: u128,
    mask: u128,
    /// The pattern has this many bytes.
    pub(crate) len: usize,
}

impl KeyPattern {
    fn new(prefix: &str) -> Self {
        let len = prefix.len();
        if len > 16 || len == 0 {
            return Self {
                bytes: 0,
                mask: 0,
                len: usize::MAX,
            };
        }
        let mut bytes = [0u8; 16];
        bytes[..len].copy_from_slice(prefix.as_bytes());
        Self {
            bytes: u128::from_le_bytes(bytes),
            mask: u128::MAX >> (8 * (16 - len)),
            len,
        }
    }

    /// The first 16 bytes of `body` as a word (zeros after its end).
    #[inline]
    pub(crate) fn word(body: &[u8]) -> u128 {
        match body.first_chunk::<16>() {
            Some(first) => u128::from_le_bytes(*first),
            // 8 to 15 bytes (`kdf none`): the first 8 and the last 8,
            // shifted to where they belong (a memcpy call costs more)
            None => match (body.first_chunk::<8>(), body.last_chunk::<8>()) {
                (Some(first), Some(last)) => {
                    let high = u64::from_le_bytes(*last)
                        .checked_shr(8 * (16 - body.len() as u32))
                        .unwrap_or(0);
                    u128::from(u64::from_le_bytes(*first)) | u128::from(high) << 64
                }
                _ => body
                    .iter()
                    .enumerate()
                    .fold(0, |word, (i, byte)| word | u128::from(*byte) << (8 * i)),
            },
        }
    }

    /// Whether a body whose first 16 bytes are `word` starts with `KEY `.
    #[inline]
    pub(crate) fn matches(&self, word: u128) -> bool {
        self.len != usize::MAX && (word ^ self.bytes) & self.mask == 0
    }
}

/// How the fast scan checks one value (of a line that is all printable
/// ASCII): the same check as [`Schema::check_simple_value`], compiled
/// from the schema once.
pub(crate) enum ValueCheck {
    /// `isize` text (what `str::parse` accepts) within the bounds.
    Integer { min: isize, max: isize },
    /// A length within the bounds (ASCII: bytes are characters), then
    /// the format's own check.
    String {
        min: usize,
        max: usize,
        format: FormatCheck,
    },
    /// Booleans and numbers: [`Schema::check_simple_value`] itself.
    Simple(&'static Schema),
    /// Arrays, objects, the id property: the fast scan gives up.
    Unhandled,
}

/// The format part of a string check.
pub(crate) enum FormatCheck {
    None,
    VerifyFn(ApiStringVerifyFn),
    /// [`verify_fingerprint_sha256`], as
    /// [`is_fingerprint`](crate::scan::is_fingerprint) checks it.
    Fingerprint,
    /// [`verify_config_text`]: of printable ASCII, what does not start or
    /// end with a space.
    ConfigText,
    /// [`verify_safe_id`], as [`is_safe_id`](crate::scan::is_safe_id)
    /// checks it.
    SafeId,
    /// Enumerations, patterns, property strings: the schema's own check
    /// of the format (the length is checked already).
    Schema(&'static StringSchema),
}

impl ValueCheck {
    /// The check of a value of `schema`.
    pub(crate) fn of(schema: &'static Schema) -> Self {
        match schema {
            Schema::Integer(integer) => ValueCheck::Integer {
                min: integer.minimum.unwrap_or(isize::MIN),
                max: integer.maximum.unwrap_or(isize::MAX),
            },
            Schema::String(string) => ValueCheck::String {
                min: string.min_length.unwrap_or(0),
                max: string.max_length.unwrap_or(usize::MAX),
                format: match string.format {
                    None => FormatCheck::None,
                    // one per key of a key config: checked vector-wise
                    // (a false negative only costs the call)
                    Some(ApiStringFormat::VerifyFn(verify))
                        if std::ptr::fn_addr_eq(
                            *verify,
                            verify_fingerprint_sha256 as ApiStringVerifyFn,
                        ) =>
                    {
                        FormatCheck::Fingerprint
                    }
                    // what the scan has checked already, but for padding
                    Some(ApiStringFormat::VerifyFn(verify))
                        if std::ptr::fn_addr_eq(
                            *verify,
                            verify_config_text as ApiStringVerifyFn,
                        ) =>
                    {
                        FormatCheck::ConfigText
                    }
                    // every section's id: checked vector-wise
                    Some(ApiStringFormat::VerifyFn(verify))
                        if std::ptr::fn_addr_eq(*verify, verify_safe_id as ApiStringVerifyFn) =>
                    {
                        FormatCheck::SafeId
                    }
                    Some(ApiStringFormat::VerifyFn(verify)) => FormatCheck::VerifyFn(*verify),
                    Some(_) => FormatCheck::Schema(string),
                },
            },
            Schema::Boolean(_) | Schema::Number(_) => ValueCheck::Simple(schema),
            _ => ValueCheck::Unhandled,
        }
    }

    /// Whether `value` (printable ASCII) passes (`Some(false)`: it does
    /// not; `None`: not decided here).
    #[inline(always)]
    pub(crate) fn check(&self, value: &str) -> Option<bool> {
        self.check_with(value.as_bytes(), || Some(value))
    }

    /// [`ValueCheck::check`] of the bytes of a value (printable ASCII, as
    /// the scan has found them); `None` if they are not text after all.
    #[inline(always)]
    pub(crate) fn check_bytes(&self, value: &[u8]) -> Option<bool> {
        self.check_with(value, || std::str::from_utf8(value).ok())
    }

    /// The check of `value`, whose text `text` gives where a function of
    /// the schema needs it (the integer, length, fingerprint and
    /// config-text checks read the bytes).
    #[inline(always)]
    fn check_with<'a>(&self, value: &[u8], text: impl FnOnce() -> Option<&'a str>) -> Option<bool> {
        match self {
            ValueCheck::Integer { min, max } => {
                Some(parse_isize(value).is_some_and(|value| (*min..=*max).contains(&value)))
            }
            // the scan has checked that every byte is printable ASCII
            ValueCheck::String { min, max, format } => Some(
                (*min..=*max).contains(&value.len())
                    && match format {
                        FormatCheck::None => true,
                        FormatCheck::VerifyFn(verify) => verify(text()?).is_ok(),
                        FormatCheck::Fingerprint => crate::scan::is_fingerprint(value),
                        FormatCheck::ConfigText => {
                            value.first() != Some(&b' ') && value.last() != Some(&b' ')
                        }
                        FormatCheck::SafeId => crate::scan::is_safe_id(value),
                        FormatCheck::Schema(schema) => {
                            schema.check_constraints_ascii(text()?).is_ok()
                        }
                    },
            ),
            ValueCheck::Simple(schema) => Some(schema.check_simple_value(text()?).is_ok()),
            ValueCheck::Unhandled => None,
        }
    }
}

/// `text.parse::<isize>()`, by bytes: an optional sign, then at least one
/// ASCII digit, within range.
#[inline(always)]
pub(crate) fn parse_isize(text: &[u8]) -> Option<isize> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    // 8 to 16 digits (an epoch has 10): two overlapping 8-byte words
    // checked and converted a word at a time
    if let (Some(first), Some(last)) = (digits.first_chunk::<8>(), digits.last_chunk::<8>())
        && digits.len() <= 16
    {
        let (first, last) = (u64::from_le_bytes(*first), u64::from_le_bytes(*last));
        if !all_digits(first) || !all_digits(last) {
            return None;
        }
        // the digits before the last 8, as a word with leading zero digits
        let high = (first.wrapping_sub(ZEROS) << ((8 * (16 - digits.len()) as u32) % 64))
            * u64::from(digits.len() > 8);
        // below 10^16: fits an i64
        let value =
            (eight_digits(high) * 100_000_000 + eight_digits(last.wrapping_sub(ZEROS))) as i64;
        return isize::try_from(if negative { -value } else { value }).ok();
    }
    // at most this many digits cannot overflow
    const SAFE_DIGITS: usize = if isize::BITS == 64 { 18 } else { 9 };
    let mut value: isize = 0;
    if digits.len() <= SAFE_DIGITS {
        for &c in digits {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + isize::from(digit);
        }
        return Some(if negative { -value } else { value });
    }
    for &c in digits {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?;
        value = match negative {
            true => value.checked_sub(isize::from(digit))?,
            false => value.checked_add(isize::from(digit))?,
        };
    }
    Some(value)
}

/// Whether `value` reads (as `str::parse::<isize>`) as an integer within
/// `min..=max`, `digits` being [`in_range_digits`] of the bounds: a value
/// of that many digits or fewer by its digits alone, any other by
/// [`parse_isize`].
#[inline(always)]
pub(crate) fn is_integer_within(value: &[u8], min: isize, max: isize, digits: usize) -> bool {
    (value.len() <= digits && is_digits(value))
        || parse_isize(value).is_some_and(|value| (min..=max).contains(&value))
}

/// How many decimal digits (without sign) always read as a value within
/// `min..=max`: the most `n` (at most 16, what [`is_digits`] checks) with
/// `min <= 0` and `10^n - 1 <= max`; 0 where `min` is above 0.
pub(crate) fn in_range_digits(min: isize, max: isize) -> usize {
    if min > 0 {
        return 0;
    }
    let mut digits = 0;
    let mut largest: isize = 9;
    while digits < 16 && largest <= max {
        digits += 1;
        largest = largest.saturating_mul(10).saturating_add(9);
    }
    digits
}

/// Whether `text` is 1 to 16 ASCII digits and nothing else (what
/// `str::parse::<isize>` reads as a value from 0 to 10^16 - 1).
#[inline(always)]
pub(crate) fn is_digits(text: &[u8]) -> bool {
    match (text.first_chunk::<8>(), text.last_chunk::<8>()) {
        (Some(first), Some(last)) => {
            text.len() <= 16
                && all_digits(u64::from_le_bytes(*first))
                && all_digits(u64::from_le_bytes(*last))
        }
        _ => !text.is_empty() && text.iter().all(u8::is_ascii_digit),
    }
}

/// Eight `'0'` bytes.
const ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);

/// Whether each of the 8 bytes of `word` is an ASCII digit: its high
/// nibble is 3 both as it is and with 6 added (digits 0x30 to 0x39 only;
/// a carry between bytes comes from a byte of 0xfa or more, which fails
/// itself).
#[inline(always)]
fn all_digits(word: u64) -> bool {
    word & word.wrapping_add(0x0606_0606_0606_0606) & 0xf0f0_f0f0_f0f0_f0f0 == ZEROS
}

/// The value of 8 decimal digits, one per byte (0 to 9, the first byte
/// the most significant), by pairs, fours, then the whole.
#[inline(always)]
fn eight_digits(digits: u64) -> u64 {
    let pairs = (digits.wrapping_mul(10) + (digits >> 8)) & 0x00ff_00ff_00ff_00ff;
    let fours = (pairs.wrapping_mul(100) + (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    (fours.wrapping_mul(10_000) + (fours >> 32)) & 0xffff_ffff
}

/// The flattened, sorted property list of a plugin.
struct PluginProperties {
    description: &'static str,
    entries: Vec<&'static SchemaPropertyEntry>,
    additional_properties: bool,
    default_key: Option<&'static str>,
}

impl PluginProperties {
    fn index_of(&self, key: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|(name, _, _)| name.as_bytes().cmp(key.as_bytes()))
            .ok()
    }
}

impl ObjectSchemaType for PluginProperties {
    fn description(&self) -> &'static str {
        self.description
    }

    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        self.index_of(key)
            .map(|index| (self.entries[index].1, self.entries[index].2))
    }

    fn properties(&self) -> ObjectPropertyIterator {
        Box::new(self.entries.clone().into_iter())
    }

    fn additional_properties(&self) -> bool {
        self.additional_properties
    }

    fn default_key(&self) -> Option<&'static str> {
        self.default_key
    }
}

#[cfg(test)]
mod tests {
    use proxmox_schema::{ObjectSchema, StringSchema};

    use super::*;

    const TEXT: Schema = StringSchema::new("Text.").schema();
    const PROPERTIES: ObjectSchema = ObjectSchema::new(
        "Properties.",
        &[
            ("archived-at", true, &TEXT),
            ("created", false, &TEXT),
            ("fingerprint", true, &TEXT),
            ("hint", true, &TEXT),
            ("id", false, &TEXT),
            ("kdf", false, &TEXT),
            ("modified", false, &TEXT),
            ("path", true, &TEXT),
        ],
    );

    #[test]
    fn the_fingerprint_format_is_checked_by_the_vector_check() {
        let check = ValueCheck::of(&proxmox_schema::api_types::CERT_FINGERPRINT_SHA256_SCHEMA);
        assert!(matches!(
            check,
            ValueCheck::String {
                format: FormatCheck::Fingerprint,
                ..
            }
        ));
        let fingerprint = ["0e"; 32].join(":");
        assert_eq!(check.check(&fingerprint), Some(true));
        assert_eq!(check.check(&fingerprint[1..]), Some(false));
    }

    #[test]
    fn the_safe_id_format_is_checked_by_the_vector_check() {
        const SAFE_ID: Schema = StringSchema::new("Id.")
            .format(&proxmox_schema::api_types::SAFE_ID_FORMAT)
            .max_length(32)
            .schema();
        let check = ValueCheck::of(&SAFE_ID);
        assert!(matches!(
            check,
            ValueCheck::String {
                format: FormatCheck::SafeId,
                ..
            }
        ));
        assert_eq!(check.check("tenant-000123"), Some(true));
        assert_eq!(check.check("-tenant"), Some(false));
        assert_eq!(check.check("tenant/000123"), Some(false));
        assert_eq!(check.check(&"t".repeat(33)), Some(false));
    }

    const CONFIG_TEXT: Schema = StringSchema::new("Text.")
        .format(&ApiStringFormat::VerifyFn(verify_config_text))
        .schema();

    proptest::proptest! {
        /// Of printable ASCII (all the scan checks a value of), the config
        /// text check accepts what `verify_config_text` accepts.
        #[test]
        fn config_text_is_checked_as_its_function_checks_it(text in "[ -~]{0,12}") {
            let check = ValueCheck::of(&CONFIG_TEXT);
            let recognized = matches!(
                check,
                ValueCheck::String {
                    format: FormatCheck::ConfigText,
                    ..
                }
            );
            proptest::prop_assert!(recognized);
            proptest::prop_assert_eq!(
                check.check(&text),
                Some(verify_config_text(&text).is_ok())
            );
        }
    }

    /// Bounds around the digit counts, and the ones of real schemas.
    const BOUNDS: [(isize, isize); 12] = [
        (0, isize::MAX),
        (isize::MIN, isize::MAX),
        (-5, 500),
        (0, 9),
        (0, 10),
        (0, 99),
        (-1, 99_999_999),
        (0, 9_999_999_999_999_999),
        (0, 99_999_999_999_999_999),
        (1, isize::MAX),
        (0, 0),
        (-9, -1),
    ];

    #[test]
    fn in_range_digits_always_read_within_the_bounds() {
        let expected = [16, 16, 2, 1, 1, 2, 8, 16, 16, 0, 0, 0];
        for ((min, max), digits) in BOUNDS.into_iter().zip(expected) {
            assert_eq!(in_range_digits(min, max), digits, "{min}..={max}");
        }
    }

    proptest::proptest! {
        /// The in-order integer check, its digits-only step included,
        /// accepts what `str::parse::<isize>` reads within the bounds.
        #[test]
        fn integers_within_bounds_are_checked_as_str_parse_reads_them(
            text in "[+-]?[0-9]{0,20}|[0-9]{0,9}[^0-9][0-9]{0,9}|[0-9]{7,9}[/:][0-9]{0,8}",
            bounds in proptest::sample::select(BOUNDS.to_vec()),
        ) {
            let (min, max) = bounds;
            let digits = in_range_digits(min, max);
            proptest::prop_assert_eq!(
                is_integer_within(text.as_bytes(), min, max, digits),
                text.parse::<isize>().is_ok_and(|value| (min..=max).contains(&value)),
                "{:?} in {}..={}", text, min, max
            );
        }
    }

    #[test]
    fn digits_are_every_byte_a_digit_at_every_length() {
        for len in 0..=18 {
            let digits = "7".repeat(len);
            assert_eq!(
                is_digits(digits.as_bytes()),
                (1..=16).contains(&len),
                "{len}"
            );
            for at in 0..len {
                for byte in [b'/', b':', b' ', b'a', 0, 0xff, b'0' + 10, b'0' - 1] {
                    let mut text = digits.clone().into_bytes();
                    text[at] = byte;
                    assert!(!is_digits(&text), "{len} {at} {byte}");
                }
            }
        }
    }

    #[test]
    fn a_word_holds_the_first_16_bytes() {
        let text: Vec<u8> = (1..=20).collect();
        for len in 0..=20 {
            let mut bytes = [0u8; 16];
            let n = len.min(16);
            bytes[..n].copy_from_slice(&text[..n]);
            assert_eq!(
                KeyPattern::word(&text[..len]),
                u128::from_le_bytes(bytes),
                "{len}"
            );
        }
        let pattern = KeyPattern::new("kdf ");
        assert!(pattern.matches(KeyPattern::word(b"kdf none")));
        assert!(!pattern.matches(KeyPattern::word(b"kdfnone")));
        assert!(!pattern.matches(KeyPattern::word(b"kdf")));
        assert!(!KeyPattern::new(&"x".repeat(17)).matches(KeyPattern::word(&[b'x'; 20])));
    }

    #[test]
    fn lookup_from_any_start_finds_what_the_binary_search_finds() {
        let plugin = SectionConfigPlugin::new("t", Some("id".into()), &PROPERTIES);
        let count = plugin.property_count();
        let keys = PROPERTIES.properties.iter().map(|(name, _, _)| *name);
        for key in keys.chain(["", "a", "zzz", "kdff", "created "]) {
            let expected = plugin.properties.index_of(key);
            for from in (0..=count + 1).chain([usize::MAX]) {
                assert_eq!(
                    plugin.lookup_index(key, from).map(|(index, _)| index),
                    expected,
                    "{key:?} from {from}"
                );
            }
        }
    }
}

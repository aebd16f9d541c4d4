//! Property test: any data that validates against the plugin schema writes
//! to text that parses back to the same data.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use proxmox_schema::api_types::SAFE_ID_FORMAT;
use proxmox_schema::{
    ArraySchema, BooleanSchema, IntegerSchema, NumberSchema, ObjectSchema, Schema, StringSchema,
};
use proxmox_section_config::{SectionConfig, SectionConfigData, SectionConfigPlugin};

const ID_SCHEMA: Schema = StringSchema::new("Id.")
    .format(&SAFE_ID_FORMAT)
    .min_length(3)
    .max_length(32)
    .schema();
const FLAG: Schema = BooleanSchema::new("Flag.").schema();
const COUNT: Schema = IntegerSchema::new("Count.").schema();
const RATIO: Schema = NumberSchema::new("Ratio.").schema();
const TEXT: Schema = StringSchema::new("Free text, one line, not padded.")
    .format(&pbs_like_text::FORMAT)
    .schema();
const TAGS: Schema = ArraySchema::new("Tags.", &ID_SCHEMA).schema();
const ITEM: ObjectSchema = ObjectSchema::new(
    "Item.",
    &[
        ("count", false, &COUNT),
        ("flag", true, &FLAG),
        ("id", false, &ID_SCHEMA),
        ("ratio", true, &RATIO),
        ("tags", true, &TAGS),
        ("text", true, &TEXT),
    ],
);
const OTHER: ObjectSchema = ObjectSchema::new("Other.", &[("text", true, &TEXT)]);
const TWO_TAGS: Schema = ArraySchema::new("At most two tags.", &ID_SCHEMA)
    .max_length(2)
    .schema();
const BOUNDED: ObjectSchema = ObjectSchema::new("Bounded.", &[("tags", true, &TWO_TAGS)]);

mod pbs_like_text {
    use proxmox_schema::{ApiStringFormat, const_regex};
    const_regex! {
        pub REGEX = r"^(?:[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?)?$";
    }
    pub const FORMAT: ApiStringFormat = ApiStringFormat::Pattern(&REGEX);
}

fn config() -> SectionConfig {
    let mut config = SectionConfig::new(&ID_SCHEMA);
    config.register_plugin(SectionConfigPlugin::new("item", Some("id".into()), &ITEM));
    config.register_plugin(SectionConfigPlugin::new("other", None, &OTHER));
    config.register_plugin(SectionConfigPlugin::new("bounded", None, &BOUNDED));
    config
}

/// Every section of `text` through `write_section_ref`, or the first error.
fn write_refs(config: &SectionConfig, text: &str) -> Result<String, anyhow::Error> {
    let mut raw = String::new();
    config.parse_with("test.cfg", text, |section| {
        config.write_section_ref(&mut raw, &section)
    })?;
    Ok(raw)
}

/// Hand-edited looking text: each section's property lines reversed (array
/// items keep their order among themselves only if `reverse` is false),
/// integers with a `+0` prefix, spaces for tabs, CRLF.
fn mess_up(text: &str, reverse: bool) -> String {
    let mut out = String::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines();
        let Some(header) = lines.next() else { continue };
        let mut props: Vec<String> = lines
            .map(|line| {
                let (key, value) = line.trim_start().split_once(' ').unwrap();
                match value.parse::<i64>() {
                    Ok(n) if n >= 0 && key == "count" => format!("  {key}  +0{n} "),
                    _ => format!("  {key}  {value}"),
                }
            })
            .collect();
        if reverse {
            props.reverse();
        }
        out.push_str(&format!("{header}\r\n{}\r\n\r\n", props.join("\r\n")));
    }
    out
}

/// Any string the schema accepts: arbitrary strings, filtered by the schema.
fn text() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("valid for TEXT", |s| TEXT.verify_json(&json!(s)).is_ok())
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9._-]{2,31}"
}

fn section() -> impl Strategy<Value = (String, Value)> {
    (
        any::<bool>(),
        any::<isize>(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        proptest::option::of(proptest::collection::vec(id(), 0..4)),
        proptest::option::of(text()),
    )
        .prop_map(|(is_item, count, flag, ratio, tags, text)| {
            let mut map = Map::new();
            if is_item {
                map.insert("count".into(), json!(count));
                if let Some(flag) = flag {
                    map.insert("flag".into(), json!(flag));
                }
                if let Some(ratio) = ratio {
                    map.insert("ratio".into(), json!(ratio));
                }
                // an empty list writes no line and so reads back as absent
                if let Some(tags) = tags.filter(|t| !t.is_empty()) {
                    map.insert("tags".into(), json!(tags));
                }
            }
            if let Some(text) = text {
                map.insert("text".into(), json!(text));
            }
            let type_name = if is_item { "item" } else { "other" };
            (type_name.to_string(), Value::Object(map))
        })
}

/// The generated sections as config data (the id in the id property), or
/// `None` if one of them is not valid for its plugin.
fn valid_data(
    config: &SectionConfig,
    sections: std::collections::BTreeMap<String, (String, Value)>,
) -> Option<SectionConfigData> {
    let mut data = SectionConfigData::new();
    for (id, (type_name, mut props)) in sections {
        if type_name == "item" {
            props["id"] = json!(id);
        }
        let plugin = &config.plugins()[&type_name];
        plugin.properties().verify_json(&props).ok()?;
        data.set_data(&id, &type_name, props).unwrap();
    }
    Some(data)
}

proptest! {
    #[test]
    fn valid_data_survives_write_and_parse(
        sections in proptest::collection::btree_map(id(), section(), 0..6)
    ) {
        let config = config();
        let data = valid_data(&config, sections);
        prop_assume!(data.is_some());
        let data = data.unwrap();
        let text = config.write("test.cfg", &data).unwrap();
        let parsed = config.parse("test.cfg", &text).unwrap();
        prop_assert_eq!(&parsed.sections, &data.sections);
        prop_assert_eq!(&parsed.order, &data.order);
    }

    #[test]
    fn write_section_ref_writes_what_write_writes(
        sections in proptest::collection::btree_map(id(), section(), 0..6),
        reverse in any::<bool>(),
    ) {
        let config = config();
        let data = valid_data(&config, sections);
        prop_assume!(data.is_some());
        let data = data.unwrap();
        let text = mess_up(&config.write("test.cfg", &data).unwrap(), reverse);
        let generic = config.parse("test.cfg", &text).and_then(|d| config.write("test.cfg", &d));
        let ours = write_refs(&config, &text);
        prop_assert_eq!(ours.ok(), generic.ok(), "{:?}", text);
    }

    #[test]
    fn parse_never_panics(text in ".{0,400}") {
        let _ = config().parse("fuzz.cfg", &text);
    }
}

/// The parser checks array items, not the array's length; the write does,
/// and write_section_ref must refuse what the write refuses.
#[test]
fn write_section_ref_checks_array_length_as_write_does() {
    let config = config();
    let text = "bounded: b-1\n\ttags aaa\n\ttags bbb\n\ttags ccc\n";
    let data = config.parse("test.cfg", text).unwrap();
    let generic = config.write("test.cfg", &data).unwrap_err().to_string();
    let ours = write_refs(&config, text).unwrap_err().to_string();
    assert!(generic.contains("tags"), "{generic}");
    assert!(ours.contains("tags"), "{ours}");
    let two = "bounded: b-1\n\ttags aaa\n\ttags bbb\n";
    assert_eq!(write_refs(&config, two).unwrap(), two);
}

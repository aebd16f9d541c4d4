//! The scan against the parser where the scan's vector pass works per
//! 64-byte block: a line of exactly the length limit (and one byte more)
//! ending at every offset of a block, and bytes the fast path must leave
//! to the parser (tab, CR, control, DEL, non-ASCII, non-breaking space)
//! at every place of a section, at every block offset. Cases a fuzzer
//! would take long to reach (a 1 MiB line; one byte at one place).

use proxmox_schema::{ObjectSchema, Schema, StringSchema};
use proxmox_section_config::{MAX_LINE_LENGTH, SectionConfig, SectionConfigPlugin};

const ID: Schema = StringSchema::new("Id.")
    .format(&proxmox_schema::api_types::SAFE_ID_FORMAT)
    .min_length(1)
    .max_length(8)
    .schema();
const BIG: Schema = StringSchema::new("Big.").max_length(4 << 20).schema();
// two names sharing a first byte, one the other's start; one whose first
// byte names it alone
const THING: ObjectSchema = ObjectSchema::new(
    "Thing.",
    &[("b", true, &BIG), ("big", true, &BIG), ("long", true, &BIG)],
);

fn config() -> SectionConfig {
    let mut config = SectionConfig::new(&ID);
    config.register_plugin(SectionConfigPlugin::new("thing", None, &THING));
    config
}

/// The scan and the parser on `text`: both accept it with the same ids,
/// or both refuse it with the same message; returns whether they accept
/// it and, if so, whether the scan took its fast path.
fn agree(config: &SectionConfig, text: &str) -> Option<bool> {
    let scan = config.scan_with_ids("t.cfg", text);
    let parse = config.parse("t.cfg", text);
    match (scan, parse) {
        (Ok((spans, ids)), Ok(data)) => {
            let ids_scanned: Vec<&str> = spans.iter().map(|span| span.id).collect();
            assert_eq!(ids_scanned, data.order, "{:?}", &text[..text.len().min(80)]);
            Some(ids.is_some())
        }
        (Err(scan), Err(parse)) => {
            assert_eq!(scan.to_string(), parse.to_string());
            None
        }
        (scan, parse) => panic!(
            "scan accepts: {}, parser accepts: {}, {:?}",
            scan.is_ok(),
            parse.is_ok(),
            &text[..text.len().min(80)]
        ),
    }
}

/// A section before shifts the long line's end through every offset of
/// a 64-byte block: at the limit the fast path takes it, one byte more
/// and both refuse it with the parser's message. The same for a name
/// of its own first byte, at the offsets around the one pass's 16-byte
/// steps.
#[test]
fn a_line_at_the_length_limit_ends_at_every_block_offset() {
    let config = config();
    let names = (0..64).map(|pad| ("big", pad));
    let names = names.chain([0, 1, 7, 14, 15, 16, 17, 63].map(|pad| ("long", pad)));
    for (name, pad) in names {
        let before = format!("thing: p\n\tb {}\n\n", "y".repeat(pad + 1));
        for len in [MAX_LINE_LENGTH, MAX_LINE_LENGTH + 1] {
            let line = format!("\t{name} {}", "x".repeat(len - name.len() - 2));
            assert_eq!(line.len(), len);
            let mut texts = vec![format!("{before}thing: one\n{line}\n\nthing: two\n\tb z\n")];
            // the last line, without a line end: checked after the blocks
            if pad % 63 == 0 {
                texts.push(format!("{before}thing: one\n{line}"));
            }
            for text in texts {
                let accepted = agree(&config, &text);
                match len <= MAX_LINE_LENGTH {
                    true => assert_eq!(accepted, Some(true), "{pad} {len}"),
                    false => assert_eq!(accepted, None, "{pad} {len}"),
                }
            }
        }
    }
}

/// Each odd byte inserted at, or put in place of, every byte of a
/// section, with the section at every block offset.
#[test]
fn odd_bytes_anywhere_at_every_block_offset() {
    let config = config();
    let body = "thing: one\n\tbig abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ\n\tb q\n";
    for pad in 0..64 {
        let before = format!("thing: p\n\tb {}\n\n", "y".repeat(pad + 1));
        let text = format!("{before}{body}");
        assert_eq!(agree(&config, &text), Some(true));
        for at in before.len()..text.len() {
            for odd in ["\t", "\r", "\u{0}", "\u{b}", "\u{7f}", "\u{e9}", "\u{a0}"] {
                let mut inserted = text.clone();
                inserted.insert_str(at, odd);
                agree(&config, &inserted);
                let mut replaced = text.clone();
                replaced.replace_range(at..at + 1, odd);
                agree(&config, &replaced);
            }
        }
    }
}

//! The one output layer of `proxmox-backup-manager`: every command prints
//! its result through an [`Output`], so all commands share one look and
//! honour the same options.
//!
//! # Formats
//!
//! `--output-format text|json|json-pretty`, else `$PROXMOX_OUTPUT_FORMAT`,
//! else `text` (upstream's proxmox-router rule):
//! - `json`, `json-pretty`: the value exactly as the API returns it, on one
//!   line or indented, followed by a newline. Never a table, never a note.
//! - `text`: lists as bordered tables with the lower-case property names as
//!   column headers, single objects as a two-column `Name`/`Value` table,
//!   everything else as the text the command gives.
//!
//! Tables look like upstream's (proxmox-router `text_table`): box-drawing
//! borders (`┌─┬─┐`, `╞═╪═╡` under the header, `├─┼─┤` between rows,
//! `└─┴─┘`), ASCII ones (`+=+`, `|`, `+-+`) when the locale's character set
//! is not UTF-8 (`LC_ALL`, else `LC_CTYPE`, else `LANG`); numbers and
//! booleans right-aligned, booleans as `1`/`0`, absent values empty.
//! `--noborder` or `$PROXMOX_OUTPUT_NO_BORDER` (set to anything) drops the
//! borders and the header (columns separated by one space, for scripts that
//! cut columns); `--noheader` or `$PROXMOX_OUTPUT_NO_HEADER` drops the header
//! only. Deliberate differences: an empty list prints its header (upstream
//! prints nothing, so an empty store looked like a broken command); lines
//! are not cut at the terminal width (columns are chosen to fit 80 to 120
//! columns instead, see each command's table).
//!
//! # Using it in a command
//!
//! Declare the table once, as a const, naming the properties to show and,
//! where the raw value is not what a reader wants, a [`render`] function:
//!
//! ```ignore
//! const KEY_TABLE: Table = Table::new(&[
//!     Column::new("id"),
//!     Column::new("fingerprint").render(render::short_fingerprint),
//!     Column::new("created").render(render::epoch),
//! ]);
//!
//! out.list(&keys, &KEY_TABLE)?;                          // a list: a table
//! out.object(&key, &KEY_FIELDS)?;                        // one object: name/value rows
//! out.message(&key, |key| format!("archived encryption key '{}'\n", key.id))?;
//! ```
//!
//! Output rule: a command computes everything first and calls the layer
//! once it has succeeded; the layer writes in one piece, so a failing
//! command prints nothing on stdout (the error goes to stderr, see `main`).

use std::io::Write;

use anyhow::{Error, bail, format_err};
use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

pub mod render;

/// `$PROXMOX_OUTPUT_FORMAT`: the default output format.
pub const ENV_OUTPUT_FORMAT: &str = "PROXMOX_OUTPUT_FORMAT";
/// `$PROXMOX_OUTPUT_NO_BORDER`: if set (to anything), tables have no
/// borders and no header.
pub const ENV_OUTPUT_NO_BORDER: &str = "PROXMOX_OUTPUT_NO_BORDER";
/// `$PROXMOX_OUTPUT_NO_HEADER`: if set (to anything), tables have no header.
pub const ENV_OUTPUT_NO_HEADER: &str = "PROXMOX_OUTPUT_NO_HEADER";

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text: tables.
    #[default]
    Text,
    /// Compact JSON, one line.
    Json,
    /// Indented JSON.
    JsonPretty,
    /// An HTML page: for `encryption-key paperkey` only (upstream's
    /// `--output-format html` of a paperkey); every other command refuses
    /// it. Hidden from the list of values.
    #[value(hide = true)]
    Html,
}

/// A table cell renderer: the property's value (`Null` when absent) and the
/// whole record, to the cell text (may hold several lines).
pub type Render = fn(value: &Value, record: &Value) -> String;

/// One column of a list table, or one row of an object table.
#[derive(Clone, Copy)]
pub struct Column {
    name: &'static str,
    render: Option<Render>,
}

impl Column {
    /// The property `name` (its wire name: also the header), shown as is.
    pub const fn new(name: &'static str) -> Self {
        Self { name, render: None }
    }

    /// Shows the property through `render` instead.
    pub const fn render(mut self, render: Render) -> Self {
        self.render = Some(render);
        self
    }

    fn text(&self, record: &Value) -> String {
        let value = record.get(self.name).unwrap_or(&Value::Null);
        match self.render {
            Some(render) => render(value, record),
            None => render::plain(value),
        }
    }
}

/// Which properties a command shows, and how.
pub struct Table {
    columns: &'static [Column],
    sorted: bool,
    rest: bool,
}

impl Table {
    /// A table of `columns`, rows in the order given.
    pub const fn new(columns: &'static [Column]) -> Self {
        Self {
            columns,
            sorted: false,
            rest: false,
        }
    }

    /// Rows sorted by the first column (upstream's default), stably.
    pub const fn sorted(mut self) -> Self {
        self.sorted = true;
        self
    }

    /// For [`Output::object`]: after the columns named, every other
    /// property of the object, in its serialized order.
    pub const fn with_rest(mut self) -> Self {
        self.rest = true;
        self
    }
}

/// The text table options in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStyle {
    /// Draw borders (and allow a header).
    pub border: bool,
    /// Print the header line.
    pub header: bool,
    /// ASCII borders instead of box-drawing characters.
    pub ascii: bool,
}

/// Where every command's result goes: the format and table style of this
/// run. Build it once with [`Output::from_options`].
#[derive(Clone, Copy, Debug)]
pub struct Output {
    format: OutputFormat,
    style: TableStyle,
}

/// Whether environment variable `name` is set (to anything, even empty).
fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// Whether the locale's character set is UTF-8: the first of `LC_ALL`,
/// `LC_CTYPE`, `LANG` that is set and not empty decides, as for setlocale;
/// none set is the C locale (ASCII).
fn locale_is_utf8() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .map(|value| {
            let value = value.to_ascii_lowercase();
            value.contains("utf-8") || value.contains("utf8")
        })
        .unwrap_or(false)
}

impl Output {
    /// The output of this run: `format` from `--output-format`, else
    /// `$PROXMOX_OUTPUT_FORMAT`, else text; borders and header unless
    /// switched off by option or environment.
    ///
    /// # Errors
    ///
    /// An unknown `$PROXMOX_OUTPUT_FORMAT`, naming the variable.
    pub fn from_options(
        format: Option<OutputFormat>,
        noborder: bool,
        noheader: bool,
    ) -> Result<Self, Error> {
        let format = match format {
            Some(format) => format,
            None => match std::env::var(ENV_OUTPUT_FORMAT) {
                Ok(text) => OutputFormat::from_str(&text, false).map_err(|_| {
                    format_err!(
                        "invalid {ENV_OUTPUT_FORMAT} {text:?} - expected text, json or json-pretty"
                    )
                })?,
                Err(std::env::VarError::NotPresent) => OutputFormat::Text,
                Err(std::env::VarError::NotUnicode(_)) => {
                    bail!("invalid {ENV_OUTPUT_FORMAT} - expected text, json or json-pretty")
                }
            },
        };
        let border = !(noborder || env_set(ENV_OUTPUT_NO_BORDER));
        let header = border && !(noheader || env_set(ENV_OUTPUT_NO_HEADER));
        Ok(Self {
            format,
            style: TableStyle {
                border,
                header,
                ascii: !locale_is_utf8(),
            },
        })
    }

    /// The format in force.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// What a text table shows for a value that is not there yet (an
    /// event that never happened): an em dash, `-` in an ASCII locale.
    pub fn none_mark(&self) -> &'static str {
        match self.style.ascii {
            true => "-",
            false => "\u{2014}",
        }
    }

    /// A list: JSON as it is, text as a table of `table`'s columns.
    pub fn list<T: Serialize>(&self, items: &[T], table: &Table) -> Result<(), Error> {
        self.emit(items, |rows| {
            let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
            self.render_list(rows, table)
        })
    }

    /// One object: JSON as it is, text as a two-column table (`Name`,
    /// `Value`) with a row per column of `table` the object has.
    pub fn object<T: Serialize>(&self, item: &T, table: &Table) -> Result<(), Error> {
        self.emit(item, |record| self.render_object(record, table))
    }

    /// Anything else: JSON as it is, text as `text` returns it (a
    /// confirmation, a report).
    pub fn message<T: Serialize>(
        &self,
        value: &T,
        text: impl FnOnce(&T) -> String,
    ) -> Result<(), Error> {
        match self.format {
            OutputFormat::Text | OutputFormat::Html => write_stdout(&text(value)),
            _ => self.write_json(value),
        }
    }

    fn emit<T: Serialize + ?Sized>(
        &self,
        value: &T,
        text: impl FnOnce(&Value) -> String,
    ) -> Result<(), Error> {
        match self.format {
            OutputFormat::Text | OutputFormat::Html => {
                write_stdout(&text(&serde_json::to_value(value)?))
            }
            _ => self.write_json(value),
        }
    }

    /// JSON streamed to standard output through a buffer, the bytes
    /// `serde_json::to_string` would give and a line feed: a list of
    /// 100,000 keys (27 MB) is never held in memory as a whole.
    fn write_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        write_json_to(std::io::stdout().lock(), self.format, value)
    }

    /// Compact JSON that `write` writes itself (bytes it proves equal to
    /// what `serde_json` gives), streamed as [`Output::write_json`] streams.
    pub fn write_json_with(
        &self,
        write: impl FnOnce(&mut std::io::BufWriter<&mut dyn Write>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        write_buffered(std::io::stdout().lock(), write)
    }

    /// The text table of `rows` (JSON objects), for a command that shows a
    /// table inside a longer text.
    pub fn render_list(&self, rows: &[Value], table: &Table) -> String {
        let mut rows: Vec<&Value> = rows.iter().collect();
        if let (true, Some(first)) = (table.sorted, table.columns.first()) {
            rows.sort_by(|a, b| compare(&a[first.name], &b[first.name]));
        }
        let columns: Vec<TableColumn> = table
            .columns
            .iter()
            .map(|column| {
                let cells = rows.iter().map(|row| column.text(row)).collect();
                let right = rows.iter().all(|row| is_numeric(&row[column.name]))
                    && rows.iter().any(|row| !row[column.name].is_null());
                TableColumn::new(column.name, cells, right, self.style.header)
            })
            .collect();
        render_table(&columns, rows.len(), self.style)
    }

    /// The text name/value table of `record` (a JSON object), for a
    /// command that shows an object inside a longer text.
    pub fn render_object(&self, record: &Value, table: &Table) -> String {
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut numeric = true;
        let present = |name: &str| record.get(name).is_some_and(|value| !value.is_null());
        for column in table.columns.iter().filter(|c| present(c.name)) {
            names.push(column.name.to_string());
            values.push(column.text(record));
            numeric &= is_numeric(&record[column.name]);
        }
        if table.rest {
            let named = |name: &str| table.columns.iter().any(|c| c.name == name);
            for (name, value) in record.as_object().into_iter().flatten() {
                if !named(name) && !value.is_null() {
                    names.push(name.clone());
                    values.push(render::plain(value));
                    numeric &= is_numeric(value);
                }
            }
        }
        let rows = names.len();
        let columns = [
            TableColumn::new("Name", names, false, self.style.header),
            TableColumn::new("Value", values, numeric && rows > 0, self.style.header),
        ];
        render_table(&columns, rows, self.style)
    }
}

fn is_numeric(value: &Value) -> bool {
    matches!(value, Value::Number(_) | Value::Bool(_) | Value::Null)
}

/// Orders by number if both are numbers, else by text; absent first.
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        _ => render::plain(a).cmp(&render::plain(b)),
    }
}

/// A column's header, its cells split into lines, width and alignment.
struct TableColumn {
    header: String,
    cells: Vec<Vec<String>>,
    width: usize,
    right: bool,
}

impl TableColumn {
    fn new(header: &str, cells: Vec<String>, right: bool, with_header: bool) -> Self {
        let cells: Vec<Vec<String>> = cells
            .iter()
            .map(|cell| cell.lines().map(str::to_string).collect())
            .collect();
        let widest = cells.iter().flatten().map(|line| line.width()).max();
        let header_width = if with_header { header.width() } else { 0 };
        Self {
            header: header.to_string(),
            width: widest.unwrap_or(0).max(header_width),
            cells,
            right,
        }
    }

    fn pad(&self, text: &str) -> String {
        let fill = " ".repeat(self.width.saturating_sub(text.width()));
        match self.right {
            true => format!("{fill}{text}"),
            false => format!("{text}{fill}"),
        }
    }
}

/// The characters of one border line: left end, fill, crossing, right end.
struct BorderLine([char; 4]);

impl BorderLine {
    fn draw(&self, columns: &[TableColumn]) -> String {
        let [left, fill, cross, right] = self.0;
        let mut line = String::new();
        for (i, column) in columns.iter().enumerate() {
            line.push(if i == 0 { left } else { cross });
            line.extend(std::iter::repeat_n(fill, column.width + 2));
        }
        line.push(right);
        line.push('\n');
        line
    }
}

/// Top, under the header, between rows, bottom; and the column separator.
fn borders(ascii: bool) -> ([BorderLine; 4], char) {
    match ascii {
        true => (
            [
                BorderLine(['+', '=', '+', '+']),
                BorderLine(['+', '=', '+', '+']),
                BorderLine(['+', '-', '+', '+']),
                BorderLine(['+', '=', '+', '+']),
            ],
            '|',
        ),
        false => (
            [
                BorderLine(['┌', '─', '┬', '┐']),
                BorderLine(['╞', '═', '╪', '╡']),
                BorderLine(['├', '─', '┼', '┤']),
                BorderLine(['└', '─', '┴', '┘']),
            ],
            '│',
        ),
    }
}

/// One text line of a table: each column's `line(column)` padded, between
/// separators (or single spaces without borders).
fn table_line(
    columns: &[TableColumn],
    style: TableStyle,
    separator: char,
    line: impl Fn(&TableColumn) -> String,
) -> String {
    let mut text = String::new();
    for (i, column) in columns.iter().enumerate() {
        match style.border {
            true => {
                text.push(separator);
                text.push(' ');
                text.push_str(&column.pad(&line(column)));
                text.push(' ');
            }
            false => {
                if i > 0 {
                    text.push(' ');
                }
                text.push_str(&column.pad(&line(column)));
            }
        }
    }
    match style.border {
        true => text.push(separator),
        // without borders, padding at the end of a line is noise
        false => text.truncate(text.trim_end().len()),
    }
    text.push('\n');
    text
}

fn render_table(columns: &[TableColumn], rows: usize, style: TableStyle) -> String {
    if columns.is_empty() || (rows == 0 && !style.header) {
        return String::new();
    }
    let ([top, head, middle, bottom], separator) = borders(style.ascii);
    let mut out = String::new();
    if style.border {
        out.push_str(&top.draw(columns));
    }
    if style.header {
        out.push_str(&table_line(columns, style, separator, |c| c.header.clone()));
        out.push_str(&match rows {
            0 => bottom.draw(columns),
            _ => head.draw(columns),
        });
    }
    for row in 0..rows {
        let height = columns
            .iter()
            .map(|c| c.cells[row].len())
            .max()
            .unwrap_or(0);
        for line in 0..height.max(1) {
            out.push_str(&table_line(columns, style, separator, |c| {
                c.cells[row].get(line).cloned().unwrap_or_default()
            }));
        }
        if style.border {
            out.push_str(&match row + 1 == rows {
                true => bottom.draw(columns),
                false => middle.draw(columns),
            });
        }
    }
    out
}

/// Writes `text` to stdout in one piece and flushes it.
/// [`Output::write_json`] to `out`.
fn write_json_to<T: Serialize + ?Sized>(
    out: impl Write,
    format: OutputFormat,
    value: &T,
) -> Result<(), Error> {
    write_buffered(out, |out| {
        match format {
            OutputFormat::JsonPretty => serde_json::to_writer_pretty(out, value),
            _ => serde_json::to_writer(out, value),
        }
        .map_err(|err| match err.io_error_kind() {
            Some(_) => format_err!("unable to write to standard output - {err}"),
            None => format_err!("unable to serialize the output - {err}"),
        })
    })
}

/// What `write` writes to `out` through a 64 KiB buffer, then a line feed.
fn write_buffered(
    out: impl Write,
    write: impl FnOnce(&mut std::io::BufWriter<&mut dyn Write>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut out = out;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, &mut out as &mut dyn Write);
    write(&mut out)?;
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .map_err(|err| format_err!("unable to write to standard output - {err}"))
}

pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| format_err!("unable to write to standard output - {err}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TABLE: Table = Table::new(&[Column::new("id"), Column::new("size")]);

    fn output(border: bool, header: bool, ascii: bool) -> Output {
        Output {
            format: OutputFormat::Text,
            style: TableStyle {
                border,
                header,
                ascii,
            },
        }
    }

    /// Streamed JSON is byte for byte what the whole string was, larger
    /// than the buffer too.
    #[test]
    fn streamed_json_is_the_whole_string() {
        let mut value = rows();
        value.push(json!({"id": "x\u{1}\"\\ \u{e9}", "text": "y".repeat(200_000)}));
        for (format, whole) in [
            (OutputFormat::Json, serde_json::to_string(&value).unwrap()),
            (
                OutputFormat::JsonPretty,
                serde_json::to_string_pretty(&value).unwrap(),
            ),
        ] {
            let mut out = Vec::new();
            write_json_to(&mut out, format, &value).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), whole + "\n");
        }
    }

    fn rows() -> Vec<Value> {
        vec![
            json!({"id": "b-key", "size": 7}),
            json!({"id": "a", "size": 1234}),
        ]
    }

    #[test]
    fn bordered_table_as_upstream_draws_it() {
        assert_eq!(
            output(true, true, false).render_list(&rows(), &TABLE),
            "┌───────┬──────┐\n\
             │ id    │ size │\n\
             ╞═══════╪══════╡\n\
             │ b-key │    7 │\n\
             ├───────┼──────┤\n\
             │ a     │ 1234 │\n\
             └───────┴──────┘\n"
        );
        assert_eq!(
            output(true, true, true).render_list(&rows(), &TABLE.sorted()),
            "+=======+======+\n\
             | id    | size |\n\
             +=======+======+\n\
             | a     | 1234 |\n\
             +-------+------+\n\
             | b-key |    7 |\n\
             +=======+======+\n"
        );
    }

    #[test]
    fn noborder_and_noheader() {
        assert_eq!(
            output(false, false, false).render_list(&rows(), &TABLE),
            "b-key    7\na     1234\n"
        );
        assert_eq!(
            output(true, false, false).render_list(&rows(), &TABLE),
            "┌───────┬──────┐\n│ b-key │    7 │\n├───────┼──────┤\n│ a     │ 1234 │\n└───────┴──────┘\n"
        );
        // an empty list: the header, closed; nothing without a header
        assert_eq!(
            output(true, true, false).render_list(&[], &TABLE),
            "┌────┬──────┐\n│ id │ size │\n└────┴──────┘\n"
        );
        assert_eq!(output(false, false, false).render_list(&[], &TABLE), "");
    }

    #[test]
    fn objects_are_name_value_rows_without_absent_properties() {
        const FIELDS: Table = Table::new(&[
            Column::new("id"),
            Column::new("hint"),
            Column::new("size").render(|value, _| format!("{} bytes", value)),
        ]);
        let record = json!({"id": "k1", "size": 3, "extra": true});
        assert_eq!(
            output(true, true, false).render_object(&record, &FIELDS),
            "┌──────┬─────────┐\n\
             │ Name │ Value   │\n\
             ╞══════╪═════════╡\n\
             │ id   │ k1      │\n\
             ├──────┼─────────┤\n\
             │ size │ 3 bytes │\n\
             └──────┴─────────┘\n"
        );
        let all = output(false, false, false).render_object(&record, &FIELDS.with_rest());
        assert_eq!(all, "id    k1\nsize  3 bytes\nextra 1\n");
    }

    #[test]
    fn wide_and_multi_line_cells() {
        let rows = vec![json!({"id": "ключ\nkey", "size": null})];
        assert_eq!(
            output(true, true, false).render_list(&rows, &TABLE),
            "┌──────┬──────┐\n\
             │ id   │ size │\n\
             ╞══════╪══════╡\n\
             │ ключ │      │\n\
             │ key  │      │\n\
             └──────┴──────┘\n"
        );
        let rows = vec![json!({"id": "鍵", "size": 1})];
        assert!(
            output(true, true, false)
                .render_list(&rows, &TABLE)
                .contains("│ 鍵 │")
        );
    }
}

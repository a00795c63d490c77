//! INF files read the way SetupAPI reads them: sections, `key = value, value` entries, `;`
//! comments, quoted strings (`""` is a quote inside one), `\` at the end of a line continuing it,
//! and `%strkey%` replaced from `[Strings]` (`%%` is a percent sign; `%13%` and other numbers
//! are directory IDs and stay as they are).
//!
//! The promise of this file: any bytes give an [`Inf`] and a list of [`Problem`]s, each with its
//! line, or a decoding [`Problem`]; nothing panics.

use std::collections::HashMap;
use std::fmt;

/// Something wrong with an INF, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line, or 0 when the problem is the absence of something in the whole file.
    pub line: usize,
    /// What is wrong, and what follows from it.
    pub message: String,
}

impl Problem {
    /// A problem at `line`.
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "(whole file): {}", self.message),
            line => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// One `key = values` or `values` line (after continuations are joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The line it starts on.
    pub line: usize,
    /// The key, when the line has an `=`.
    pub key: Option<String>,
    /// The comma-separated values, unquoted and with strings substituted.
    pub values: Vec<String>,
}

impl Entry {
    /// Value `index`, or `""` when there are fewer.
    pub fn value(&self, index: usize) -> &str {
        self.values.get(index).map_or("", String::as_str)
    }

    /// True when the key is `key` (case-insensitively).
    pub fn has_key(&self, key: &str) -> bool {
        self.key.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(key))
    }
}

/// One `[name]` section; sections of the same name are merged, as SetupAPI does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name as first written.
    pub name: String,
    /// The line of its first header.
    pub line: usize,
    /// Its entries, in order.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The first entry with `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.has_key(key))
    }

    /// Every entry with `key`.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |entry| entry.has_key(key))
    }
}

/// A parsed INF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inf {
    /// The sections, in order of first appearance.
    pub sections: Vec<Section>,
}

impl Inf {
    /// The section `name` (case-insensitively).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|section| section.name.eq_ignore_ascii_case(name))
    }
}

/// Decodes an INF: UTF-16LE with its byte order mark, or UTF-8 with or without one.
///
/// # Errors
///
/// A [`Problem`] on the line of the first undecodable byte (UTF-16BE, odd UTF-16 lengths,
/// unpaired surrogates, invalid UTF-8 such as an ANSI code page file, NUL characters).
pub fn decode(bytes: &[u8]) -> Result<String, Problem> {
    let text = if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        decode_utf16le(rest)?
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Problem::new(1, "UTF-16 big-endian text: save the INF as UTF-16LE (with BOM) or UTF-8"));
    } else {
        let rest = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_string(),
            Err(error) => {
                let line = line_of(&rest[..error.valid_up_to()]);
                return Err(Problem::new(
                    line,
                    "not UTF-8 (an ANSI code page file?): save the INF as UTF-8 or UTF-16LE with a byte order mark",
                ));
            }
        }
    };
    if let Some(at) = text.find('\0') {
        return Err(Problem::new(
            line_of(&text.as_bytes()[..at]),
            "NUL character in the text (UTF-16 without a byte order mark?)",
        ));
    }
    Ok(text)
}

fn line_of(before: &[u8]) -> usize {
    before.iter().filter(|&&byte| byte == b'\n').count() + 1
}

fn decode_utf16le(bytes: &[u8]) -> Result<String, Problem> {
    let units = bytes.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut line = 1;
    for unit in char::decode_utf16(units) {
        match unit {
            Ok(character) => {
                line += usize::from(character == '\n');
                text.push(character);
            }
            Err(_) => return Err(Problem::new(line, "unpaired UTF-16 surrogate: the file is damaged")),
        }
    }
    if bytes.len() % 2 != 0 {
        return Err(Problem::new(line, "UTF-16 text with an odd number of bytes: the file is truncated"));
    }
    Ok(text)
}

/// The part of `line` before its comment, and whether a quote is left open.
fn code_part(line: &str) -> (&str, bool) {
    let mut quoted = false;
    for (at, character) in line.char_indices() {
        match character {
            '"' => quoted = !quoted,
            ';' if !quoted => return (&line[..at], false),
            _ => {}
        }
    }
    (line, quoted)
}

/// Splits a logical line into an optional key and values.
fn tokenize(code: &str) -> Result<(Option<String>, Vec<String>), &'static str> {
    let mut key = None;
    let mut values = Vec::new();
    let mut token = String::new();
    let mut pending_space = String::new();
    let mut quoted = false;
    let mut characters = code.chars().peekable();
    while let Some(character) = characters.next() {
        if quoted {
            if character == '"' {
                if characters.peek() == Some(&'"') {
                    characters.next();
                    token.push('"');
                } else {
                    quoted = false;
                }
            } else {
                token.push(character);
            }
            continue;
        }
        match character {
            '"' => {
                if !token.is_empty() {
                    token.push_str(&pending_space);
                }
                pending_space.clear();
                quoted = true;
            }
            '=' if key.is_none() && values.is_empty() => {
                if token.is_empty() {
                    return Err("entry with an empty key before '='");
                }
                key = Some(std::mem::take(&mut token));
                pending_space.clear();
            }
            ',' => {
                values.push(std::mem::take(&mut token));
                pending_space.clear();
            }
            space if space.is_whitespace() => pending_space.push(space),
            other => {
                if !token.is_empty() {
                    token.push_str(&pending_space);
                }
                pending_space.clear();
                token.push(other);
            }
        }
    }
    if quoted {
        return Err("quoted string without its closing '\"'");
    }
    values.push(token);
    if key.is_some() && values == [""] {
        values.clear();
    }
    Ok((key, values))
}

/// Parses INF text. Problems (syntax, undefined `%strkey%`) come back with their lines; the
/// [`Inf`] holds everything that could be read.
pub fn parse(text: &str) -> (Inf, Vec<Problem>) {
    let mut inf = Inf::default();
    let mut problems = Vec::new();
    let mut current: Option<usize> = None;
    let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).enumerate();
    while let Some((index, first)) = lines.next() {
        let line = index + 1;
        let (mut code, mut open_quote) = code_part(first);
        let mut logical = String::new();
        while !open_quote && code.trim_end().ends_with('\\') {
            let trimmed = code.trim_end();
            logical.push_str(&trimmed[..trimmed.len() - 1]);
            match lines.next() {
                Some((_, next)) => (code, open_quote) = code_part(next),
                None => {
                    code = "";
                    break;
                }
            }
        }
        logical.push_str(code);
        if open_quote {
            problems.push(Problem::new(line, "quoted string without its closing '\"'"));
            continue;
        }
        let trimmed = logical.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some((name, after)) = header.split_once(']') else {
                problems.push(Problem::new(line, format!("section header '{trimmed}' has no closing ']'")));
                continue;
            };
            let name = name.trim();
            if name.is_empty() {
                problems.push(Problem::new(line, "section header with an empty name"));
                continue;
            }
            if !after.trim().is_empty() {
                problems.push(Problem::new(line, format!("text after the section header [{name}]")));
            }
            current = Some(match inf.sections.iter().position(|section| section.name.eq_ignore_ascii_case(name)) {
                Some(existing) => existing,
                None => {
                    inf.sections.push(Section { name: name.to_string(), line, entries: Vec::new() });
                    inf.sections.len() - 1
                }
            });
            continue;
        }
        let Some(section) = current else {
            problems.push(Problem::new(line, "text before the first section header"));
            continue;
        };
        match tokenize(trimmed) {
            Ok((key, values)) => inf.sections[section].entries.push(Entry { line, key, values }),
            Err(message) => problems.push(Problem::new(line, message)),
        }
    }
    substitute_strings(&mut inf, &mut problems);
    problems.sort_by_key(|problem| problem.line);
    (inf, problems)
}

/// Replaces `%strkey%` everywhere but in `[Strings]` sections.
fn substitute_strings(inf: &mut Inf, problems: &mut Vec<Problem>) {
    let strings: HashMap<String, String> = inf
        .section("Strings")
        .map(|section| {
            section
                .entries
                .iter()
                .filter_map(|entry| Some((entry.key.as_ref()?.to_lowercase(), entry.values.join(","))))
                .collect()
        })
        .unwrap_or_default();
    for section in &mut inf.sections {
        let lower = section.name.to_lowercase();
        if lower == "strings" || lower.starts_with("strings.") {
            continue;
        }
        for entry in &mut section.entries {
            let line = entry.line;
            let mut expand = |text: &mut String| match expand(text, &strings) {
                Ok(expanded) => *text = expanded,
                Err(message) => problems.push(Problem::new(line, message)),
            };
            if let Some(key) = entry.key.as_mut() {
                expand(key);
            }
            entry.values.iter_mut().for_each(&mut expand);
        }
    }
}

fn expand(text: &str, strings: &HashMap<String, String>) -> Result<String, String> {
    if !text.contains('%') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('%').ok_or_else(|| format!("'%' without a closing '%' in '{text}'"))?;
        let name = &after[..end];
        if name.is_empty() {
            out.push('%');
        } else if name.bytes().all(|byte| byte.is_ascii_digit()) {
            out.push('%');
            out.push_str(name);
            out.push('%');
        } else {
            let value =
                strings.get(&name.to_lowercase()).ok_or_else(|| format!("%{name}% is not defined in [Strings]"))?;
            out.push_str(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a number as SetupAPI does: `0x` hexadecimal, otherwise decimal.
pub fn number(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

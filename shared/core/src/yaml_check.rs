//! Checking a YAML document against a schema: the context that collects
//! every diagnostic with its `line:col`, typed readers for scalars, lists,
//! globs, durations and dates, the key tables that say which setter each
//! known key runs, and the nearest-key suggestions. Every document Shipgate
//! validates (policies, routes) is checked through it.

use std::fmt;

use chrono::NaiveDate;

use crate::glob::Glob;
use crate::policy::Duration;
use crate::yaml::{self, Mark, Node, Value};

/// One finding about a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    /// The dotted key path (`scan.thresholds.HIGH`); empty for the document.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.col, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.line, self.col, self.key, self.message)
        }
    }
}

/// An invalid document: every error, and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

/// One known key of a mapping and what its value sets in `T`. The setter
/// gets the value's node and its dotted path, and reports its own errors.
pub(crate) struct Field<T> {
    pub key: &'static str,
    pub set: fn(&mut Cx, &mut T, &Node, &str),
}

/// The keys of a table, for messages and for checks that a key is known.
pub(crate) fn keys<T>(fields: &[Field<T>]) -> impl Iterator<Item = &'static str> + '_ {
    fields.iter().map(|f| f.key)
}

/// Collects diagnostics while walking a YAML tree; shared by every document
/// Shipgate validates (policies, routes).
#[derive(Default)]
pub(crate) struct Cx {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Cx {
    /// Reads a YAML document to validate; a syntax error is the one error.
    pub(crate) fn read(text: &str) -> Result<(Self, Node), Invalid> {
        let mut cx = Cx::default();
        match yaml::parse(text) {
            Ok(root) => Ok((cx, root)),
            Err(e) => {
                cx.error(e.mark, "", format!("YAML syntax: {}", e.message));
                Err(cx.into_invalid())
            }
        }
    }

    pub(crate) fn error(&mut self, mark: Mark, key: &str, message: String) {
        self.errors.push(Diagnostic { line: mark.line, col: mark.col, key: key.to_owned(), message });
    }

    pub(crate) fn warning(&mut self, mark: Mark, key: &str, message: String) {
        self.warnings.push(Diagnostic { line: mark.line, col: mark.col, key: key.to_owned(), message });
    }

    /// The warnings, sorted and each once, when there were no errors.
    pub(crate) fn into_result<T>(self, value: T) -> Result<(T, Vec<Diagnostic>), Invalid> {
        if self.errors.is_empty() {
            let mut warnings = self.warnings;
            warnings.sort();
            warnings.dedup();
            Ok((value, warnings))
        } else {
            Err(self.into_invalid())
        }
    }

    /// Walks a mapping whose known keys are exactly the table's: an unknown
    /// key is reported with the nearest known one, and each known key runs
    /// its own setter. A key exists only as a table entry, so it cannot be
    /// known without a setter, nor land in another key's field.
    pub(crate) fn fields<T>(&mut self, node: &Node, path: &str, fields: &[Field<T>], target: &mut T) {
        let known: Vec<&str> = keys(fields).collect();
        for (key, _, value) in self.mapping(node, path, &known) {
            let key_path = if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
            self.field(fields, key, value, &key_path, target);
        }
    }

    /// Runs the setter of `key` from the table. Callers pass only keys the
    /// table lists (`mapping` filtered them), so every key finds its setter.
    pub(crate) fn field<T>(
        &mut self,
        fields: &[Field<T>],
        key: &str,
        value: &Node,
        path: &str,
        target: &mut T,
    ) {
        if let Some(field) = fields.iter().find(|f| f.key == key) {
            (field.set)(self, target, value, path);
        }
    }

    pub(crate) fn into_invalid(mut self) -> Invalid {
        // Environment overlays re-walk the base; report each problem once.
        self.errors.sort();
        self.errors.dedup();
        self.warnings.sort();
        self.warnings.dedup();
        Invalid { errors: self.errors, warnings: self.warnings }
    }

    pub(crate) fn type_error(&mut self, node: &Node, key: &str, expected: &str) {
        self.error(node.mark, key, format!("must be {expected}, got {}", node.kind()));
    }

    /// The entries of a mapping whose keys are strings, reporting unknown keys
    /// (when `known` is not empty) with the nearest known one, and duplicates.
    pub(crate) fn mapping<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        known: &[&str],
    ) -> Vec<(&'a str, &'a Node, &'a Node)> {
        let Value::Map(entries) = &node.value else {
            if !(matches!(node.value, Value::Null) && path.is_empty()) {
                self.type_error(node, path, "a mapping");
            }
            return Vec::new();
        };
        let mut out: Vec<(&'a str, &'a Node, &'a Node)> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.error(k.mark, path, format!("keys must be strings, got {}", k.kind()));
                continue;
            };
            let key_path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
            if out.iter().any(|(seen, _, _)| *seen == name) {
                self.error(k.mark, &key_path, "duplicate key".into());
                continue;
            }
            if !known.is_empty() && !known.contains(&name) {
                let hint = suggestion(name, known);
                self.error(k.mark, &key_path, format!("unknown key{hint}"));
                continue;
            }
            out.push((name, k, v));
        }
        out
    }

    pub(crate) fn sequence<'a>(&mut self, node: &'a Node, path: &str) -> Option<&'a [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.type_error(node, path, "a list");
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.type_error(node, path, "true or false");
                None
            }
        }
    }

    /// A non-negative integer.
    pub(crate) fn count(&mut self, node: &Node, path: &str) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            Value::Int(i) => {
                self.error(node.mark, path, format!("must not be negative, got {i}"));
                None
            }
            _ => {
                self.type_error(node, path, "a non-negative integer");
                None
            }
        }
    }

    /// A number, integer or not.
    pub(crate) fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) if f.is_finite() => Some(f),
            _ => {
                self.type_error(node, path, "a number");
                None
            }
        }
    }

    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    /// A scalar read as text (an exception id of `12345` is an id).
    pub(crate) fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = node.scalar_text();
        if text.is_none() {
            self.type_error(node, path, "a string");
        }
        text
    }

    pub(crate) fn strings_with_marks(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Mark)>> {
        let items = self.sequence(node, path)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(item, &format!("{path}[{i}]")) {
                Some(s) => out.push((s, item.mark)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub(crate) fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        self.strings_with_marks(node, path).map(|v| v.into_iter().map(|(s, _)| s).collect())
    }

    pub(crate) fn globs(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = self.strings_with_marks(node, path)?;
        let mut ok = true;
        for (i, (pattern, mark)) in items.iter().enumerate() {
            if let Err(e) = Glob::new(pattern) {
                self.error(*mark, &format!("{path}[{i}]"), e.to_string());
                ok = false;
            }
        }
        ok.then(|| items.into_iter().map(|(s, _)| s).collect())
    }

    pub(crate) fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let parsed = node.as_str().and_then(Duration::parse);
        if parsed.is_none() {
            let got = node.scalar_text().map_or_else(|| node.kind().to_owned(), |t| format!("{t:?}"));
            self.error(node.mark, path, format!("must be a duration like 30s, 30m, 12h or 14d, got {got}"));
        }
        parsed
    }

    pub(crate) fn date(&mut self, node: &Node, path: &str) -> Option<NaiveDate> {
        let parsed = node.as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        if parsed.is_none() {
            let got = node.scalar_text().map_or_else(|| node.kind().to_owned(), |t| format!("{t:?}"));
            self.error(node.mark, path, format!("must be a date like 2026-12-31, got {got}"));
        }
        parsed
    }

    pub(crate) fn keyword<T: Copy>(&mut self, node: &Node, path: &str, options: &[(&str, T)]) -> Option<T> {
        let found = node.as_str().and_then(|s| options.iter().find(|(name, _)| *name == s)).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
            let got = node.scalar_text().map_or_else(|| node.kind().to_owned(), |t| format!("{t:?}"));
            self.error(node.mark, path, format!("must be {}, got {got}", names.join(" or ")));
        }
        found
    }
}

/// Compiles a policy regex with a size limit, so a pattern cannot make the
/// evaluator slow or large.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
        // The regex crate's message spans several lines; the last says what.
        e.to_string().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim().to_owned()
    })
}

/// ` (did you mean 'x'?)` with the nearest candidate by edit distance when
/// it is close, else the list of candidates.
pub(crate) fn suggestion(word: &str, candidates: &[&str]) -> String {
    let word = word.to_ascii_lowercase();
    let nearest = candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), *c))
        .min_by_key(|(d, _)| *d);
    match nearest {
        Some((distance, c)) if distance <= (word.chars().count() / 3).max(2) => {
            format!(" (did you mean '{c}'?)")
        }
        Some(_) => format!(" (expected one of: {})", candidates.join(", ")),
        None => String::new(),
    }
}

/// Where a mapping visibly starts: its first key (the parser marks a block
/// mapping at its first `:`).
pub(crate) fn start_mark(node: &Node) -> Mark {
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => entries[0].0.mark,
        _ => node.mark,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

//! A small, bounded YAML reader that keeps the line and column of every node.
//!
//! Policy errors must point at `line:col`, and a policy file is untrusted
//! input: it must not be able to exhaust memory with an alias bomb or the
//! stack with deep nesting. So events are pulled from `yaml-rust2`'s parser
//! (which keeps its own state on the heap) and the tree is built here with an
//! explicit stack, counting every node, aliases expanded, against fixed limits.

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::limits::{YAML_BYTES, too_large};

/// Limits on untrusted YAML (its size: [`YAML_BYTES`]).
pub const MAX_DEPTH: usize = 64;
pub const MAX_NODES: usize = 100_000;

/// A position in the source, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

fn mark(m: &Marker) -> Mark {
    Mark { line: m.line(), col: m.col() + 1 }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; duplicates are reported by the reader.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

impl Node {
    /// A short name for the node's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar as text (for keys and for values where numbers are names,
    /// like an exception `id` of `12345`).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub mark: Mark,
    pub message: String,
}

enum Frame {
    Seq { items: Vec<Node>, mark: Mark, anchor: usize },
    Map { entries: Vec<(Node, Node)>, pending_key: Option<Node>, mark: Mark, anchor: usize },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
}

/// Counts the nodes in a tree (for aliases, whose expansion is charged in full).
fn size(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(k, v)| size(k) + size(v)).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    fn charge(&mut self, n: usize, at: Mark) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                mark: at,
                message: format!("document too large: more than {MAX_NODES} nodes (aliases expanded)"),
            });
        }
        Ok(())
    }

    fn push_node(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            let n = size(&node);
            self.anchors.insert(anchor, (node.clone(), n));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending_key, .. }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
        Ok(())
    }
}

/// Parses one YAML document into a marked tree, within the limits above.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() as u64 > YAML_BYTES {
        return Err(YamlError {
            mark: Mark { line: 1, col: 1 },
            message: too_large(text.len() as u64, YAML_BYTES),
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder { stack: Vec::new(), anchors: Default::default(), nodes: 0, root: None };
    let mut documents = 0;
    loop {
        let (event, marker) = parser
            .next_token()
            .map_err(|e| YamlError { mark: mark(e.marker()), message: e.info().to_owned() })?;
        let at = mark(&marker);
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        mark: at,
                        message: "expected one YAML document, found more".into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.charge(1, at)?;
                let value = scalar(text, style, tag.as_ref());
                b.push_node(Node { value, mark: at }, anchor)?;
            }
            Event::Alias(id) => {
                let Some((node, n)) = b.anchors.get(&id).cloned() else {
                    return Err(YamlError { mark: at, message: "alias to an unknown anchor".into() });
                };
                b.charge(n, at)?;
                b.push_node(Node { mark: at, ..node }, 0)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                b.charge(1, at)?;
                if b.stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        mark: at,
                        message: format!("nested more than {MAX_DEPTH} levels deep"),
                    });
                }
                b.stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq { items: Vec::new(), mark: at, anchor }
                } else {
                    Frame::Map { entries: Vec::new(), pending_key: None, mark: at, anchor }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match b.stack.pop() {
                    Some(Frame::Seq { items, mark, anchor }) => {
                        (Node { value: Value::Seq(items), mark }, anchor)
                    }
                    Some(Frame::Map { entries, mark, anchor, .. }) => {
                        (Node { value: Value::Map(entries), mark }, anchor)
                    }
                    None => return Err(YamlError { mark: at, message: "unbalanced collection".into() }),
                };
                b.push_node(node, anchor)?;
            }
        }
    }
    Ok(b.root.unwrap_or(Node { value: Value::Null, mark: Mark { line: 1, col: 1 } }))
}

/// Resolves a scalar's type by the YAML 1.2 core schema (plain scalars only;
/// quoted ones are always strings).
fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if style != TScalarStyle::Plain || tag.is_some_and(|t| t.suffix == "str") {
        return Value::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    let looks_numeric =
        text.bytes().next().is_some_and(|c| c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.');
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_point_at_keys_and_values() {
        let doc = parse("version: 1\nscan:\n  wait: 30m\n").unwrap();
        let Value::Map(top) = &doc.value else { panic!() };
        assert_eq!(top[0].0.mark, Mark { line: 1, col: 1 });
        assert_eq!(top[0].1.value, Value::Int(1));
        let Value::Map(scan) = &top[1].1.value else { panic!() };
        assert_eq!(scan[0].0.mark, Mark { line: 3, col: 3 });
        assert_eq!(scan[0].1.mark, Mark { line: 3, col: 9 });
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let doc = parse("[1, -2, 1.5, true, ~, '1', x, 2026-12-31]").unwrap();
        let Value::Seq(items) = doc.value else { panic!() };
        let values: Vec<_> = items.into_iter().map(|n| n.value).collect();
        assert_eq!(
            values,
            [
                Value::Int(1),
                Value::Int(-2),
                Value::Float(1.5),
                Value::Bool(true),
                Value::Null,
                Value::Str("1".into()),
                Value::Str("x".into()),
                Value::Str("2026-12-31".into())
            ]
        );
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut doc = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in 'b'..='k' {
            doc.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let err = parse(&doc).unwrap_err();
        assert!(err.message.contains("too large"), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_rejected_without_recursion() {
        // Flow nesting: the scanner's own limit stops it.
        let err = parse(&"[".repeat(100_000)).unwrap_err();
        assert!(err.message.contains("recursion limit"), "{err:?}");
        // Block nesting: ours does.
        let doc: String = (0..100).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        let err = parse(&doc).unwrap_err();
        assert!(err.message.contains("nested more than 64"), "{err:?}");
    }

    #[test]
    fn huge_file_is_rejected_before_parsing() {
        let doc = "# padding\n".repeat(200_000);
        assert!(parse(&doc).unwrap_err().message.contains("file too large"));
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse("scan:\n  wait: [30m\n").unwrap_err();
        assert!(err.mark.line >= 2, "{err:?}");
    }
}

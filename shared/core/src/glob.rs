//! Glob patterns for repository names, registry hosts and branches.
//!
//! `*` matches any run of characters except `/`; `**` matches any run
//! including `/`; `?` matches one character except `/`; `[abc]`, `[a-z]` and
//! `[!a]` match one character from (or not from) a set. Everything else
//! matches itself. Matching is case-sensitive and anchored at both ends.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`
    AnyDepth,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::One => c != '/',
            Token::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
            Token::Star | Token::AnyDepth => false,
        }
    }
}

/// A compiled glob. Compiling is cheap and matching allocates one row of
/// booleans, so thousands of matches per evaluation cost microseconds.
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {pattern:?}: {reason}")]
pub struct GlobError {
    pub pattern: String,
    pub reason: &'static str,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let err = |reason| GlobError { pattern: pattern.to_owned(), reason };
        if pattern.is_empty() {
            return Err(err("empty pattern"));
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    tokens.push(Token::AnyDepth);
                    i += 1;
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::One),
                '[' => {
                    let close = chars[i + 1..].iter().position(|&c| c == ']').map(|p| p + i + 1);
                    let Some(close) = close else { return Err(err("unclosed '['")) };
                    let mut class: &[char] = &chars[i + 1..close];
                    let negated = matches!(class.first(), Some('!') | Some('^'));
                    if negated {
                        class = &class[1..];
                    }
                    if class.is_empty() {
                        return Err(err("empty character class"));
                    }
                    let mut ranges = Vec::new();
                    let mut j = 0;
                    while j < class.len() {
                        if j + 2 < class.len() && class[j + 1] == '-' {
                            if class[j] > class[j + 2] {
                                return Err(err("invalid character range"));
                            }
                            ranges.push((class[j], class[j + 2]));
                            j += 3;
                        } else {
                            ranges.push((class[j], class[j]));
                            j += 1;
                        }
                    }
                    tokens.push(Token::Class { negated, ranges });
                    i = close;
                }
                ']' => return Err(err("unmatched ']'")),
                c => tokens.push(Token::Char(c)),
            }
            i += 1;
        }
        Ok(Self { source: pattern.to_owned(), tokens })
    }

    pub fn is_match(&self, text: &str) -> bool {
        // reachable[j]: the first j tokens can match the text read so far.
        let n = self.tokens.len();
        let mut reachable = vec![false; n + 1];
        reachable[0] = true;
        close_stars(&self.tokens, &mut reachable);
        for c in text.chars() {
            let mut next = vec![false; n + 1];
            for (j, token) in self.tokens.iter().enumerate() {
                if !reachable[j] {
                    continue;
                }
                match token {
                    Token::Star if c != '/' => next[j] = true,
                    Token::AnyDepth => next[j] = true,
                    t if t.matches(c) => next[j + 1] = true,
                    _ => {}
                }
            }
            close_stars(&self.tokens, &mut next);
            if !next.iter().any(|&r| r) {
                return false;
            }
            reachable = next;
        }
        reachable[n]
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// A star may match nothing: whatever reaches it also reaches past it.
fn close_stars(tokens: &[Token], reachable: &mut [bool]) {
    for (j, token) in tokens.iter().enumerate() {
        if reachable[j] && matches!(token, Token::Star | Token::AnyDepth) {
            reachable[j + 1] = true;
        }
    }
}

/// True when any glob matches (an empty list matches nothing).
pub fn any_match(globs: &[Glob], text: &str) -> bool {
    globs.iter().any(|g| g.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().is_match(t)
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(m("payments-*", "payments-api"));
        assert!(!m("payments-*", "payments-api/v2"));
        assert!(m("team/**", "team/a/b"));
        assert!(m("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"));
        assert!(!m("*.dkr.ecr.*.amazonaws.com", "docker.io"));
    }

    #[test]
    fn classes_and_literals() {
        assert!(m("release/v[0-9]*", "release/v1.2"));
        assert!(!m("release/v[!0-9]*", "release/v1.2"));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"), "a dot is literal");
        assert!(m("?", "x"));
    }

    #[test]
    fn invalid_globs_are_errors() {
        assert_eq!(Glob::new("[abc").unwrap_err().reason, "unclosed '['");
        assert_eq!(Glob::new("a]").unwrap_err().reason, "unmatched ']'");
        assert_eq!(Glob::new("[]").unwrap_err().reason, "empty character class");
        assert_eq!(Glob::new("[z-a]").unwrap_err().reason, "invalid character range");
        assert!(Glob::new("").is_err());
    }
}

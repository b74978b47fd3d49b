//! A container's `user`, read as the runtime reads it.
//!
//! ECS on Fargate runs containers with containerd and runc. runc resolves
//! the user with `github.com/moby/sys/user` (`GetExecUser`, `parseNumeric`):
//! the spec is cut at the first `:` into user and group; each part is a
//! number if Go's `strconv.Atoi` reads it (an optional `+` or `-` sign, then
//! decimal digits, leading zeros allowed, within `int64`), else a name to
//! look up in the image's `/etc/passwd` or `/etc/group`; a number below 0 or
//! above 2147483647, or beyond `int64`, is refused. So `-0` and `00` are uid
//! 0, and ` 0` is a name. containerd casts a number to `uint32` without that
//! check, so `4294967296` would be uid 0 there: Shipgate refuses every value
//! runc refuses, whichever runtime reads it first.
//!
//! The test vectors are `TestGetExecUser` and `TestGetExecUserInvalid` of
//! moby/sys `user/user_test.go` (commit d7c3b9e), less the cases that depend
//! on the image's passwd file, which Shipgate cannot read.

/// Who a container's `user` says it runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// No user (or an empty one before `:`): the image's default, root
    /// unless the image says otherwise.
    Unset,
    /// A numeric uid.
    Uid(u32),
    /// A user name, resolved in the image's `/etc/passwd`.
    Name(String),
    /// A value the runtime refuses (a number out of 0–2147483647 in the user
    /// or the group part).
    Refused,
}

impl RunAs {
    /// Reads `spec` as runc does.
    pub fn parse(spec: &str) -> Self {
        let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
        if matches!(numeric(group), Some(Err(()))) {
            return Self::Refused;
        }
        match numeric(user) {
            _ if user.is_empty() => Self::Unset,
            Some(Ok(uid)) => Self::Uid(uid),
            Some(Err(())) => Self::Refused,
            None => Self::Name(user.to_owned()),
        }
    }

    /// Root: uid 0, or the name `root`. (Another name with uid 0 in the
    /// image's passwd is not known here.)
    pub fn is_root(&self) -> bool {
        matches!(self, Self::Unset | Self::Uid(0)) || matches!(self, Self::Name(n) if n == "root")
    }
}

/// A uid or gid as `parseNumeric` reads it: `None` when `strconv.Atoi` does
/// not read it as a number (a name), `Some(Err)` when it is a number out of
/// 0–2147483647 (or of `int64`).
fn numeric(part: &str) -> Option<Result<u32, ()>> {
    let digits = part.strip_prefix(['+', '-']).unwrap_or(part);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let negative = part.starts_with('-');
    // Atoi's range is int64: past it, ErrRange (a number, refused), as is
    // anything past 2147483647 or below 0, so the one bound is runc's.
    let Ok(magnitude) = digits.parse::<u64>() else { return Some(Err(())) };
    if (negative && magnitude != 0) || magnitude > i32::MAX as u64 {
        return Some(Err(()));
    }
    Some(Ok(magnitude as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moby/sys `TestGetExecUser`: the specs it resolves without a passwd
    /// lookup (numeric users), with the uid it expects.
    #[test]
    fn valid_numeric_specs_of_moby_sys_resolve_to_their_uid() {
        for (spec, uid) in [
            ("42:1234", 42),
            ("1337:1234", 1337),
            ("1337", 1337),
            ("111", 111),
            ("111:444", 111),
            ("7456", 7456),
            ("7456:2147483647", 7456),
            ("2147483647:43", 2147483647),
            ("2147483647", 2147483647),
        ] {
            assert_eq!(RunAs::parse(spec), RunAs::Uid(uid), "{spec}");
        }
        // Names are looked up in the image's passwd ("root", "adm", "root:adm").
        assert_eq!(RunAs::parse("adm:1234"), RunAs::Name("adm".into()));
        assert_eq!(RunAs::parse("root:adm"), RunAs::Name("root".into()));
        assert_eq!(RunAs::parse(""), RunAs::Unset);
    }

    /// moby/sys `TestGetExecUserInvalid`, "Invalid user/group values": every
    /// one is refused here too (the "no such user" cases need the image).
    #[test]
    fn invalid_values_of_moby_sys_are_refused() {
        for spec in [
            "-1:0",
            "0:-3",
            "-5:-2",
            "-42",
            "-43",
            "42:2147483648",
            "2147483648:43",
            "2147483648",
            "7456:9223372036854775807",
            "9223372036854775807:43",
            "9223372036854775807",
            "9223372036854775808",
            "0:9223372036854775808",
        ] {
            assert_eq!(RunAs::parse(spec), RunAs::Refused, "{spec}");
        }
    }

    /// The spellings of root that `strconv.Atoi` reads as 0, and containerd's
    /// uint32 wrap, which runc's range refuses.
    #[test]
    fn root_by_another_spelling_is_root_or_refused() {
        for spec in ["0", "-0", "-00", "+0", "00", "000:0", "-0:0", "0:1000", "root", "root:wheel", ":0"] {
            let run_as = RunAs::parse(spec);
            assert!(run_as.is_root(), "{spec}: {run_as:?}");
        }
        assert_eq!(RunAs::parse("4294967296"), RunAs::Refused);
        assert_eq!(RunAs::parse("4294967296:0"), RunAs::Refused);
        // Atoi reads no space: " 0" is a name, which the image's passwd must have.
        assert_eq!(RunAs::parse(" 0"), RunAs::Name(" 0".into()));
        for spec in ["1000", "+100", "010", "app", "10001:10001", "1000:0"] {
            assert!(!RunAs::parse(spec).is_root(), "{spec}");
        }
    }
}

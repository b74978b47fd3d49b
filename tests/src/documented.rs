//! The deploy commands the documentation gives, read as a user would run
//! them: which template, which `--parameter-overrides`. A test deploys the
//! fleet with exactly those, and the demo runs what the deploy guide ends
//! with, so a parameter the docs forget breaks a test, not a user's release.

use std::collections::BTreeMap;

/// The documents whose commands a newcomer runs, in the order they are read.
pub const DOCUMENTS: [&str; 2] = ["README.md", "docs/deploy.md"];

/// One documented `sam deploy` or `aws cloudformation deploy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentedDeploy {
    /// `README.md:98`.
    pub source: String,
    /// `infra/template.yaml`.
    pub template: String,
    pub parameters: BTreeMap<String, String>,
}

impl DocumentedDeploy {
    /// A deploy of the fleet (`infra/template.yaml`).
    pub fn is_fleet(&self) -> bool {
        self.template == "infra/template.yaml"
    }

    /// The parameters, each `<placeholder>` (a value the user copies from a
    /// stack output or their account) replaced by `fill(placeholder)`.
    pub fn parameters_with(&self, fill: impl Fn(&str) -> String) -> BTreeMap<String, String> {
        self.parameters
            .iter()
            .map(|(k, v)| {
                let value = match v.strip_prefix('<').and_then(|v| v.strip_suffix('>')) {
                    Some(placeholder) => fill(placeholder),
                    None => v.clone(),
                };
                (k.clone(), value)
            })
            .collect()
    }
}

/// Every deploy command in [`DOCUMENTS`], in reading order.
pub fn documented_deploys() -> Vec<DocumentedDeploy> {
    DOCUMENTS
        .iter()
        .flat_map(|doc| {
            let text = std::fs::read_to_string(crate::workspace_root().join(doc)).unwrap();
            deploys_in(doc, &text)
        })
        .collect()
}

/// The deploy commands in `text` (shell lines continued with `\`).
pub fn deploys_in(doc: &str, text: &str) -> Vec<DocumentedDeploy> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let mut command = lines[i].trim_end().to_owned();
        while command.ends_with('\\') && i + 1 < lines.len() {
            command.pop();
            i += 1;
            command.push(' ');
            command.push_str(lines[i].trim());
        }
        i += 1;
        let command = command.trim();
        if !(command.starts_with("sam deploy") || command.starts_with("aws cloudformation deploy")) {
            continue;
        }
        // Placeholders hold spaces (`<TestListenerUrl output>`): split on
        // spaces outside angle brackets.
        let mut words = Vec::new();
        let (mut word, mut depth) = (String::new(), 0);
        for c in command.chars() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                _ => {}
            }
            if c == ' ' && depth == 0 {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
        let template = words
            .iter()
            .position(|w| w == "--template-file")
            .map(|p| words[p + 1].clone())
            .unwrap_or_else(|| panic!("{doc}:{}: a deploy without --template-file", start + 1));
        let parameters = words
            .iter()
            .skip_while(|w| *w != "--parameter-overrides")
            .skip(1)
            .take_while(|w| !w.starts_with("--"))
            .map(|w| {
                let (k, v) =
                    w.split_once('=').unwrap_or_else(|| panic!("{doc}:{}: {w} is not K=V", start + 1));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        out.push(DocumentedDeploy { source: format!("{doc}:{}", start + 1), template, parameters });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_continued_over_lines_and_placeholders_with_spaces_read_as_a_user_types_them() {
        let text = "Run:\n\n```sh\nsam deploy --template-file infra/template.yaml --stack-name s \\\n  \
                    --parameter-overrides A=1 B=<X output> \\\n  C=x,y --capabilities CAPABILITY_IAM\n```\n";
        let deploys = deploys_in("doc.md", text);
        assert_eq!(deploys.len(), 1);
        assert_eq!(deploys[0].source, "doc.md:4");
        assert!(deploys[0].is_fleet());
        let filled = deploys[0].parameters_with(|p| format!("[{p}]"));
        assert_eq!(
            filled.into_iter().collect::<Vec<_>>(),
            [("A".into(), "1".into()), ("B".into(), "[X output]".into()), ("C".into(), "x,y".into())]
        );
    }
}

//! Just enough Cargo.toml reading for xtask, line by line: section headers and
//! their non-blank, non-comment lines. xtask depends on anyhow only, and the
//! manifests it reads are plain.

/// One `[header]` or `[[header]]` and the lines under it. Lines before the
/// first header form a section with an empty header.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    /// The header's dotted keys, unquoted: `target.'cfg(unix)'.dependencies`
    /// is `["target", "cfg(unix)", "dependencies"]`.
    pub(crate) keys: Vec<String>,
    /// `[[bin]]` rather than `[bin]`.
    pub(crate) is_array: bool,
    /// 1-based line of the header (0 for the headerless top).
    pub(crate) line: usize,
    pub(crate) entries: Vec<Entry<'a>>,
}

/// A non-blank line under a header, its comment removed.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    /// 1-based line number.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the test-only tidy checks")
    )]
    pub(crate) line: usize,
    pub(crate) text: &'a str,
}

impl<'a> Section<'a> {
    /// The header as written between the brackets, normalised.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the test-only tidy checks")
    )]
    pub(crate) fn header(&self) -> String {
        self.keys.join(".")
    }

    /// The unquoted string value of `key = "value"` in this section.
    pub(crate) fn string(&self, key: &str) -> Option<&'a str> {
        self.entries.iter().find_map(|entry| {
            let (k, v) = entry.text.split_once('=')?;
            (k.trim() == key).then(|| unquote(v.trim()))?
        })
    }
}

pub(crate) fn sections(text: &str) -> Vec<Section<'_>> {
    let mut sections = vec![Section {
        keys: Vec::new(),
        is_array: false,
        line: 0,
        entries: Vec::new(),
    }];
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let text = strip_comment(raw).trim();
        if text.is_empty() {
            continue;
        }
        if let Some(header) = text.strip_prefix("[[").and_then(|t| t.strip_suffix("]]")) {
            sections.push(Section {
                keys: dotted_keys(header),
                is_array: true,
                line,
                entries: Vec::new(),
            });
        } else if let Some(header) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            sections.push(Section {
                keys: dotted_keys(header),
                is_array: false,
                line,
                entries: Vec::new(),
            });
        } else {
            sections
                .last_mut()
                .expect("`sections` starts with the headerless section and only grows")
                .entries
                .push(Entry { line, text });
        }
    }
    sections
}

/// `line` without a trailing `# comment` (a `#` inside a string stays).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

fn dotted_keys(header: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut quote = None;
    for c in header.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => keys.push(String::new()),
            (None, c) if c.is_whitespace() => {}
            (_, c) => keys
                .last_mut()
                .expect("`keys` starts non-empty and only grows")
                .push(c),
        }
    }
    keys
}

fn unquote(value: &str) -> Option<&str> {
    ["\"", "'"]
        .iter()
        .find_map(|q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_headers_entries_and_strings() {
        let text = "\
name = 'top' # comment
[target.'cfg(target_os = \"linux\")'.dependencies]
libc = \"0.2\" # pinned
# only a comment

[[bin]]
name = \"a#b\"
";
        let sections = super::sections(text);
        let summary: Vec<_> = sections
            .iter()
            .map(|s| {
                (
                    s.header(),
                    s.is_array,
                    s.line,
                    s.entries
                        .iter()
                        .map(|e| (e.line, e.text))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (String::new(), false, 0, vec![(1, "name = 'top'")]),
                (
                    "target.cfg(target_os = \"linux\").dependencies".to_owned(),
                    false,
                    2,
                    vec![(3, "libc = \"0.2\"")]
                ),
                ("bin".to_owned(), true, 6, vec![(7, "name = \"a#b\"")]),
            ]
        );
        assert_eq!(
            sections[1].keys,
            ["target", "cfg(target_os = \"linux\")", "dependencies"]
        );
        assert_eq!(sections[0].string("name"), Some("top"));
        assert_eq!(sections[2].string("name"), Some("a#b"));
        assert_eq!(sections[2].string("path"), None);
    }
}

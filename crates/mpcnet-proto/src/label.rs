//! Labels: short user-given text (session, party and program names) that is safe to show
//! in a terminal or a web page: bounded length, no control or bidirectional-override characters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most characters a label may have.
pub const MAX_LABEL_CHARS: usize = 64;

/// Why a piece of text was refused as a label or argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} contains a control character (U+{code:04X})")]
    ControlCharacter { what: &'static str, code: u32 },
}

/// Checks that `text` has at most `max` characters and nothing that could rewrite a terminal
/// line or reorder text on screen.
pub fn check_printable(what: &'static str, text: &str, max: usize) -> Result<(), LabelError> {
    if text.chars().count() > max {
        return Err(LabelError::TooLong { what, max });
    }
    match text.chars().find(|c| is_unsafe_to_show(*c)) {
        Some(c) => Err(LabelError::ControlCharacter {
            what,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// Whether `c` could rewrite a terminal line or reorder text on screen (control and
/// bidirectional-override characters).
pub fn is_unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character [`is_unsafe_to_show`] replaced by U+FFFD, for showing text
/// that came from elsewhere (a server's message, an error).
pub fn printable(text: &str) -> String {
    let safe = |c: char| if is_unsafe_to_show(c) { '\u{fffd}' } else { c };
    text.chars().map(safe).collect()
}

/// A validated, trimmed, non-empty label.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    /// Validates `text` (after trimming surrounding whitespace) as the label `what`.
    pub fn new(what: &'static str, text: &str) -> Result<Self, LabelError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LabelError::Empty { what });
        }
        check_printable(what, text, MAX_LABEL_CHARS)?;
        Ok(Self(text.to_owned()))
    }

    /// The label's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new("label", &text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        let cases: &[(&str, Result<&str, LabelError>)] = &[
            ("  alice ", Ok("alice")),
            ("<b>Ålice</b> & co", Ok("<b>Ålice</b> & co")),
            ("", Err(LabelError::Empty { what: "name" })),
            ("   ", Err(LabelError::Empty { what: "name" })),
            (
                "a\u{1b}[2Jb",
                Err(LabelError::ControlCharacter {
                    what: "name",
                    code: 0x1b,
                }),
            ),
            (
                "evil\u{202e}txt.py",
                Err(LabelError::ControlCharacter {
                    what: "name",
                    code: 0x202e,
                }),
            ),
        ];
        for (input, expected) in cases {
            let got = Label::new("name", input);
            assert_eq!(
                got.as_ref().map(Label::as_str).map_err(Clone::clone),
                expected.clone(),
                "input {input:?}"
            );
        }
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        assert!(matches!(
            Label::new("name", &long),
            Err(LabelError::TooLong { .. })
        ));
    }
}

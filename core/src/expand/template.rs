//! Parsing a template once and expanding it per delivery.

use super::error::ExpandError;
use super::modifier::Modifier;
use super::sanitise;
use super::substring::Substring;
use super::{ExpandContext, Variable};

/// A parsed template: literal text, `~/` and `%{…}` tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A leading `~/`: the user's home directory and a slash.
    Home,
    Token(Token),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    variable: Variable,
    /// The selector and its text as written, for error messages.
    substring: Option<(Substring, String)>,
    modifiers: Vec<Modifier>,
}

impl Template {
    /// Parses `template`, reporting the first syntax error.
    pub fn parse(template: &str) -> Result<Template, ExpandError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        // OpenSMTPD only honours `~` as the very first character, as in a shell word.
        let mut rest = match template.strip_prefix("~/") {
            Some(rest) => {
                parts.push(Part::Home);
                rest
            }
            None => template,
        };
        while let Some(percent) = rest.find('%') {
            literal.push_str(&rest[..percent]);
            let after = &rest[percent + 1..];
            if let Some(after) = after.strip_prefix('%') {
                literal.push('%');
                rest = after;
            } else if let Some(inside) = after.strip_prefix('{') {
                let offset = template.len() - rest.len() + percent;
                let close = inside
                    .find('}')
                    .ok_or(ExpandError::Unterminated { offset })?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Token(Token::parse(&inside[..close], offset)?));
                rest = &inside[close + 1..];
            } else {
                literal.push('%');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// Expands the template for one delivery; `delim` is the sub-address delimiter for `:strip`.
    pub fn expand(&self, ctx: &ExpandContext, delim: char) -> Result<String, ExpandError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Home => {
                    out.push_str(&ctx.user_directory);
                    out.push('/');
                }
                Part::Token(token) => out.push_str(&token.expand(ctx, delim)?),
            }
        }
        Ok(out)
    }

    /// Whether the template refers to `variable` (a leading `~/` counts as `user.directory`).
    #[must_use]
    pub fn uses(&self, variable: Variable) -> bool {
        self.parts.iter().any(|part| match part {
            Part::Literal(_) => false,
            Part::Home => variable == Variable::UserDirectory,
            Part::Token(token) => token.variable == variable,
        })
    }
}

impl Token {
    /// Parses `name[sub]:mod|mod`, the text between `%{` and `}`.
    fn parse(content: &str, offset: usize) -> Result<Token, ExpandError> {
        let name_end = content.find(['[', ':']).unwrap_or(content.len());
        let name = &content[..name_end];
        let variable = Variable::from_name(name).ok_or_else(|| ExpandError::UnknownVariable {
            name: name.to_owned(),
            offset,
        })?;
        let mut rest = &content[name_end..];

        let mut substring = None;
        if let Some(inside) = rest.strip_prefix('[') {
            let bad = || ExpandError::BadSubstring {
                spec: inside.to_owned(),
                offset,
            };
            let close = inside.find(']').ok_or_else(bad)?;
            let spec = &inside[..close];
            rest = &inside[close + 1..];
            // OpenSMTPD silently ignores text between `]` and `:`; it is always a typo.
            if !(rest.is_empty() || rest.starts_with(':')) {
                return Err(bad());
            }
            substring = Some((Substring::parse(spec).ok_or_else(bad)?, spec.to_owned()));
        }

        let modifiers = match rest.strip_prefix(':') {
            None => Vec::new(),
            Some(list) => list
                .split('|')
                .map(|name| {
                    Modifier::from_name(name).ok_or_else(|| ExpandError::UnknownModifier {
                        name: name.to_owned(),
                        offset,
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Token {
            variable,
            substring,
            modifiers,
        })
    }

    /// Modifiers first, then sanitising, then the substring — OpenSMTPD's order, so a substring
    /// offset counts the characters that end up in the output.
    fn expand(&self, ctx: &ExpandContext, delim: char) -> Result<String, ExpandError> {
        let mut value = self
            .variable
            .value(ctx)
            .ok_or(ExpandError::MdaUnavailable)?;
        let shape = self.variable.shape();
        for modifier in &self.modifiers {
            value = modifier.apply(value, shape, delim);
        }
        let sanitised = self.variable.is_sanitised() && !self.modifiers.contains(&Modifier::Raw);
        if sanitised {
            value = sanitise::sanitise(&value);
        }
        if let Some((substring, spec)) = &self.substring {
            value = substring
                .apply(&value)
                .map_err(|_| ExpandError::SubstringOutOfRange {
                    variable: self.variable,
                    spec: spec.clone(),
                    len: value.chars().count(),
                })?;
        }
        if sanitised {
            value = sanitise::guard_lone_dot(value);
        }
        Ok(value)
    }
}

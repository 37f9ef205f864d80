//! SCIM filter expressions (RFC 7644 §3.4.2.2): tokenizer, recursive-descent parser and the
//! `Filter` AST that the store translates to SQL and the in-memory evaluator walks.
//!
//! Pure: no I/O. Parsing is bounded (input length and nesting depth) so a hostile filter
//! costs little; every syntax error carries the byte offset where parsing stopped.

use std::fmt;

/// Longest filter text accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not`, value filters and logical operators accepted.
pub const MAX_FILTER_DEPTH: usize = 32;

/// An attribute path as it appears in a filter: `[urn:…:]attr[.subAttr]`
/// (RFC 7644 §3.4.2.2 `attrPath`). Names keep the case they were written in; comparing them
/// to schema names is case-insensitive (RFC 7643 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// Schema URN prefix, without the trailing colon, e.g.
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub urn: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

/// Comparison operators (RFC 7644 §3.4.2.2, table 3). `pr` is `Filter::Present`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Every comparison operator, in RFC 7644 table 3 order.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];
}

/// The literal on the right of a comparison (RFC 7644 §3.4.2.2 `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath op compValue`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attrPath[valFilter]`: some value of the multi-valued attribute `path` (which has no
    /// `sub_attr`) matches `filter`, whose paths are relative to that value (`type`, `value`).
    ValuePath(AttrPath, Box<Filter>),
}

/// A syntax error: `pos` is the byte offset into the filter text where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub pos: usize,
    pub message: String,
}

impl FilterError {
    fn new(pos: usize, message: impl Into<String>) -> Self {
        Self {
            pos,
            message: message.into(),
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for FilterError {}

const OPERATORS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le, pr";

/// A PATCH operation's target (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`):
/// `name.givenName`, `emails[type eq "work"]`, `emails[type eq "work"].value`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute; it has a `sub_attr` only when there is no value filter.
    pub attr: AttrPath,
    /// The value filter, with paths relative to one value of `attr`.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter.
    pub sub_attr: Option<String>,
}

/// Parses a PATCH path (RFC 7644 §3.5.2).
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError::new(MAX_FILTER_LEN, "path is too long"));
    }
    let Some(open) = input.find('[') else {
        return parse_path(input).map(|attr| PatchPath {
            attr,
            filter: None,
            sub_attr: None,
        });
    };
    let attr = parse_path(&input[..open])?;
    if attr.sub_attr.is_some() {
        return Err(FilterError::new(
            open,
            "a value filter \"[...]\" cannot follow a sub-attribute",
        ));
    }
    let mut p = Parser {
        src: input,
        pos: open + 1,
        depth: 1,
        in_value_path: true,
    };
    if p.peek() == Tok::RBracket {
        return Err(p.error("empty value filter \"[]\""));
    }
    let filter = p.parse_or()?;
    match p.peek() {
        Tok::RBracket => p.pos += 1,
        Tok::End => {
            return Err(FilterError::new(
                open,
                "unbalanced bracket: \"[\" is never closed",
            ));
        }
        tok => return Err(p.unexpected(tok, "\"and\", \"or\" or \"]\"")),
    }
    let rest = &input[p.pos..];
    let sub_attr = match rest.strip_prefix('.') {
        None if rest.is_empty() => None,
        Some(name) => {
            check_name(name, p.pos + 1)?;
            Some(name.to_owned())
        }
        None => {
            return Err(p.error("expected \".\" and a sub-attribute, or the end of the path"));
        }
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub_attr,
    })
}

/// Parses a lone attribute path (`sortBy`, `attributes` entries): `[urn:]attr[.subAttr]`.
pub fn parse_path(input: &str) -> Result<AttrPath, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError::new(
            MAX_FILTER_LEN,
            "attribute path is too long",
        ));
    }
    if input.is_empty() || input.contains(|c: char| c.is_whitespace() || "[]()\"".contains(c)) {
        return Err(FilterError::new(
            0,
            format!("\"{input}\" is not an attribute path"),
        ));
    }
    attr_path(input, 0)
}

/// Parses a SCIM filter (RFC 7644 §3.4.2.2).
///
/// Besides the RFC grammar this accepts what real identity providers send: unquoted string
/// values (`externalId eq jyoung`) and a sub-attribute after a value filter
/// (`emails[type eq "work"].value eq "x"`, read as `emails[type eq "work" and value eq "x"]`).
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError::new(
            MAX_FILTER_LEN,
            format!("filter is longer than {MAX_FILTER_LEN} bytes"),
        ));
    }
    let mut p = Parser {
        src: input,
        pos: 0,
        depth: 0,
        in_value_path: false,
    };
    if p.peek() == Tok::End {
        return Err(p.error("empty filter"));
    }
    let filter = p.parse_or()?;
    match p.peek() {
        Tok::End => Ok(filter),
        Tok::RParen => Err(p.error("unbalanced parenthesis: unexpected \")\"")),
        Tok::RBracket => Err(p.error("unbalanced bracket: unexpected \"]\"")),
        tok => Err(p.unexpected(tok, "\"and\", \"or\" or the end of the filter")),
    }
}

/// A token, recognised lazily at the parser's position. Strings and compValues are lexed by
/// dedicated methods because an unquoted value has its own delimiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    End,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Quote,
    /// A run of characters up to whitespace or one of `()[]"`: an attribute path, an
    /// operator or a keyword.
    Word(&'a str),
}

struct Parser<'a> {
    src: &'a str,
    /// Always on a char boundary: it only advances past ASCII delimiters or whole words.
    pos: usize,
    depth: usize,
    in_value_path: bool,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn error(&self, message: impl Into<String>) -> FilterError {
        FilterError::new(self.pos, message)
    }

    fn unexpected(&self, tok: Tok<'_>, expected: &str) -> FilterError {
        let found = match tok {
            Tok::End => {
                return self.error(format!("unexpected end of filter; expected {expected}"));
            }
            Tok::LParen => "\"(\"".to_owned(),
            Tok::RParen => "\")\"".to_owned(),
            Tok::LBracket => "\"[\"".to_owned(),
            Tok::RBracket => "\"]\"".to_owned(),
            Tok::Quote => "a quoted string".to_owned(),
            Tok::Word(w) => format!("\"{w}\""),
        };
        self.error(format!("expected {expected}, found {found}"))
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_whitespace())
                .len();
    }

    /// Skips whitespace and returns the next token without consuming it.
    fn peek(&mut self) -> Tok<'a> {
        self.skip_ws();
        let rest = self.rest();
        match rest.as_bytes().first() {
            None => Tok::End,
            Some(b'(') => Tok::LParen,
            Some(b')') => Tok::RParen,
            Some(b'[') => Tok::LBracket,
            Some(b']') => Tok::RBracket,
            Some(b'"') => Tok::Quote,
            Some(_) => Tok::Word(word(rest)),
        }
    }

    /// Consumes the next token if it is the (case-insensitive) keyword `kw`.
    fn keyword(&mut self, kw: &str) -> bool {
        match self.peek() {
            Tok::Word(w) if w.eq_ignore_ascii_case(kw) => {
                self.pos += w.len();
                true
            }
            _ => false,
        }
    }

    /// Enters one level of nesting; `open` is where the nested construct starts.
    fn enter(&mut self, open: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(FilterError::new(
                open,
                format!("filter nests deeper than {MAX_FILTER_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    // and/or chains are parsed by iteration (left-associative), so only grouping recurses
    // and `depth` bounds the stack.
    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut lhs = self.parse_and()?;
        while self.keyword("or") {
            let rhs = self.parse_and()?;
            lhs = Filter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut lhs = self.parse_unary()?;
        while self.keyword("and") {
            let rhs = self.parse_unary()?;
            lhs = Filter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        match self.peek() {
            Tok::LParen => self.parse_group(),
            Tok::Word(w) => {
                // `not` is only the operator when a "(" follows; otherwise it names an attribute.
                if w.eq_ignore_ascii_case("not") {
                    let start = self.pos;
                    self.pos += w.len();
                    if self.peek() == Tok::LParen {
                        return Ok(Filter::Not(Box::new(self.parse_group()?)));
                    }
                    self.pos = start;
                }
                self.parse_attr_exp(w)
            }
            Tok::Quote => {
                Err(self.error("a filter must start with an attribute path, not a quoted value"))
            }
            tok => Err(self.unexpected(tok, "an attribute path, \"not\" or \"(\"")),
        }
    }

    /// `"(" FILTER ")"`, with the parser at the "(".
    fn parse_group(&mut self) -> Result<Filter, FilterError> {
        let open = self.pos;
        self.pos += 1;
        self.enter(open)?;
        if self.peek() == Tok::RParen {
            return Err(self.error("empty parentheses"));
        }
        let inner = self.parse_or()?;
        match self.peek() {
            Tok::RParen => self.pos += 1,
            Tok::End => {
                return Err(FilterError::new(
                    open,
                    "unbalanced parenthesis: \"(\" is never closed",
                ));
            }
            tok => return Err(self.unexpected(tok, "\"and\", \"or\" or \")\"")),
        }
        self.depth -= 1;
        Ok(inner)
    }

    /// `attrPath pr`, `attrPath op value` or `attrPath "[" valFilter "]"`, with the parser at
    /// `word`, the attribute path.
    fn parse_attr_exp(&mut self, word: &str) -> Result<Filter, FilterError> {
        let start = self.pos;
        let path = attr_path(word, start)?;
        self.pos += word.len();
        if self.peek() == Tok::LBracket {
            return self.parse_value_path(path, start);
        }
        self.parse_comparison(path, word)
    }

    /// The operator and value after `path`; `after` is the path's text, for messages.
    fn parse_comparison(&mut self, path: AttrPath, after: &str) -> Result<Filter, FilterError> {
        let tok = self.peek();
        let Tok::Word(op) = tok else {
            return Err(self.error(format!(
                "expected a comparison operator ({OPERATORS}) after \"{after}\""
            )));
        };
        if op.eq_ignore_ascii_case("pr") {
            self.pos += op.len();
            // Other trailing words are left to the caller's "expected and/or" error.
            return match self.peek() {
                Tok::Quote => Err(self.error("\"pr\" does not take a value")),
                Tok::Word(w) if is_literal(w) => Err(self.error("\"pr\" does not take a value")),
                _ => Ok(Filter::Present(path)),
            };
        }
        let Some(cmp) = compare_op(op) else {
            return Err(if after.eq_ignore_ascii_case("not") {
                self.error("expected \"(\" after \"not\"")
            } else {
                self.error(format!(
                    "unknown comparison operator \"{op}\"; expected one of {OPERATORS}"
                ))
            });
        };
        self.pos += op.len();
        let value = self.parse_value(op)?;
        Ok(Filter::Compare(path, cmp, value))
    }

    /// `"[" valFilter "]"` after `path` (which starts at `start`), with the parser at the "[".
    fn parse_value_path(&mut self, path: AttrPath, start: usize) -> Result<Filter, FilterError> {
        let open = self.pos;
        if path.sub_attr.is_some() {
            return Err(self.error("a value filter \"[...]\" cannot follow a sub-attribute"));
        }
        if self.in_value_path {
            return Err(self.error("value filters cannot be nested"));
        }
        self.pos += 1;
        self.enter(open)?;
        if self.peek() == Tok::RBracket {
            return Err(self.error("empty value filter \"[]\""));
        }
        self.in_value_path = true;
        let inner = self.parse_or()?;
        self.in_value_path = false;
        match self.peek() {
            Tok::RBracket => self.pos += 1,
            Tok::End => {
                return Err(FilterError::new(
                    open,
                    "unbalanced bracket: \"[\" is never closed",
                ));
            }
            tok => return Err(self.unexpected(tok, "\"and\", \"or\" or \"]\"")),
        }
        self.depth -= 1;

        // Entra ID sends `emails[type eq "work"].value eq "x"`: fold the trailing comparison
        // into the value filter, since both constrain the same value.
        if !self.rest().starts_with('.') {
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let dotted = word(self.rest());
        let name = &dotted[1..];
        check_name(name, self.pos + 1)?;
        self.pos += dotted.len();
        let sub = AttrPath {
            urn: None,
            attr: name.to_owned(),
            sub_attr: None,
        };
        let cond = self.parse_comparison(sub, &self.src[start..self.pos])?;
        Ok(Filter::ValuePath(
            path,
            Box::new(Filter::And(Box::new(inner), Box::new(cond))),
        ))
    }

    /// A compValue after operator `op`. Unquoted text that is not a keyword or a number is
    /// taken as a string, as some identity providers send it.
    fn parse_value(&mut self, op: &str) -> Result<CompValue, FilterError> {
        self.skip_ws();
        let rest = self.rest();
        match rest.as_bytes().first() {
            Some(b'"') => return self.parse_string().map(CompValue::String),
            None | Some(b'(' | b')' | b'[' | b']') => {
                return Err(self.error(format!("expected a value after \"{op}\"")));
            }
            Some(_) => {}
        }
        let len = rest
            .find(|c: char| c.is_ascii_whitespace() || c == ')' || c == ']')
            .unwrap_or(rest.len());
        let raw = &rest[..len];
        let start = self.pos;
        self.pos += len;
        let value = if raw.eq_ignore_ascii_case("true") {
            CompValue::Bool(true)
        } else if raw.eq_ignore_ascii_case("false") {
            CompValue::Bool(false)
        } else if raw.eq_ignore_ascii_case("null") {
            CompValue::Null
        } else if looks_numeric(raw) {
            let invalid =
                || FilterError::new(start, format!("invalid or out-of-range number \"{raw}\""));
            let n: serde_json::Number = raw.parse().map_err(|_| invalid())?;
            // serde_json's default float parsing may be an ulp off; std's is correctly
            // rounded, so the value survives Display and re-parsing.
            let n = if n.is_f64() {
                let f = raw.parse::<f64>().map_err(|_| invalid())?;
                serde_json::Number::from_f64(f).ok_or_else(invalid)?
            } else {
                n
            };
            CompValue::Number(n)
        } else {
            CompValue::String(raw.to_owned())
        };
        Ok(value)
    }

    /// A JSON string literal, with the parser at its opening quote.
    fn parse_string(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        let body = open + 1;
        let unterminated = || FilterError::new(open, "unterminated string");
        let mut out = String::new();
        let mut chars = self.src[body..].char_indices();
        while let Some((i, c)) = chars.next() {
            let at = body + i;
            match c {
                '"' => {
                    self.pos = at + 1;
                    return Ok(out);
                }
                '\\' => {
                    let (_, esc) = chars.next().ok_or_else(unterminated)?;
                    out.push(match esc {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => unicode_escape(&mut chars, at)?,
                        other => {
                            return Err(FilterError::new(
                                at,
                                format!("invalid escape \"\\{other}\" in string"),
                            ));
                        }
                    });
                }
                c if c < ' ' => {
                    return Err(FilterError::new(
                        at,
                        "control characters in strings must be escaped",
                    ));
                }
                c => out.push(c),
            }
        }
        Err(unterminated())
    }
}

/// The word at the start of `s`: up to whitespace or a delimiter. All delimiters are ASCII,
/// so the split is on a char boundary.
fn word(s: &str) -> &str {
    let end = s
        .find(|c: char| c.is_ascii_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"'))
        .unwrap_or(s.len());
    &s[..end]
}

const COMPARE_OPS: [(&str, CompareOp); 9] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("co", CompareOp::Co),
    ("sw", CompareOp::Sw),
    ("ew", CompareOp::Ew),
    ("gt", CompareOp::Gt),
    ("ge", CompareOp::Ge),
    ("lt", CompareOp::Lt),
    ("le", CompareOp::Le),
];

fn compare_op(word: &str) -> Option<CompareOp> {
    COMPARE_OPS
        .iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map(|&(_, op)| op)
}

fn is_literal(word: &str) -> bool {
    ["true", "false", "null"]
        .iter()
        .any(|kw| word.eq_ignore_ascii_case(kw))
        || looks_numeric(word)
}

/// Text made only of number characters must be a valid JSON number; anything else unquoted
/// (`2819c223-7f76-…`, `jyoung`) is a string.
fn looks_numeric(raw: &str) -> bool {
    raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// The rest of a `\uXXXX` escape (after the `u`), joining a UTF-16 surrogate pair;
/// `at` is the position of the backslash.
fn unicode_escape(chars: &mut std::str::CharIndices<'_>, at: usize) -> Result<char, FilterError> {
    let high = hex4(chars, at)?;
    let code = match high {
        0xD800..=0xDBFF => {
            let mut ahead = chars.clone();
            let low = match (ahead.next(), ahead.next()) {
                (Some((_, '\\')), Some((_, 'u'))) => hex4(&mut ahead, at)?,
                _ => 0,
            };
            if !(0xDC00..=0xDFFF).contains(&low) {
                return Err(FilterError::new(at, "unpaired surrogate in \"\\u\" escape"));
            }
            *chars = ahead;
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        }
        0xDC00..=0xDFFF => {
            return Err(FilterError::new(at, "unpaired surrogate in \"\\u\" escape"));
        }
        _ => high,
    };
    char::from_u32(code).ok_or_else(|| FilterError::new(at, "invalid \"\\u\" escape"))
}

fn hex4(chars: &mut std::str::CharIndices<'_>, at: usize) -> Result<u32, FilterError> {
    let mut code = 0;
    for _ in 0..4 {
        let digit = chars.next().and_then(|(_, c)| c.to_digit(16));
        let digit = digit.ok_or_else(|| {
            FilterError::new(at, "\"\\u\" must be followed by 4 hexadecimal digits")
        })?;
        code = code * 16 + digit;
    }
    Ok(code)
}

/// Splits `[urn ":"] attr ["." sub]`; `pos` is where `word` starts.
fn attr_path(word: &str, pos: usize) -> Result<AttrPath, FilterError> {
    // A schema id is a URN or, as Entra's ADSCIM schema, an http(s) URI; the first colon
    // that may end it follows the scheme (and the `//` of a URI).
    let scheme = ["urn:", "http://", "https://"]
        .into_iter()
        .find(|p| {
            word.get(..p.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(p))
        })
        .map(str::len);
    let (urn, name, name_pos) = if let Some(scheme) = scheme {
        // URNs contain dots (`…:2.0:User`), so the attribute starts after the last colon.
        match word.rfind(':') {
            Some(colon) if colon > scheme => (
                Some(word[..colon].to_owned()),
                &word[colon + 1..],
                pos + colon + 1,
            ),
            _ => {
                return Err(FilterError::new(
                    pos,
                    format!("expected a schema URN, \":\" and an attribute name in \"{word}\""),
                ));
            }
        }
    } else {
        (None, word, pos)
    };
    let (attr, sub_attr) = match name.split_once('.') {
        Some((attr, sub)) => {
            let sub_pos = name_pos + attr.len() + 1;
            if let Some(dot) = sub.find('.') {
                return Err(FilterError::new(
                    sub_pos + dot,
                    "an attribute path has at most one sub-attribute",
                ));
            }
            check_name(sub, sub_pos)?;
            (attr, Some(sub.to_owned()))
        }
        None => (name, None),
    };
    check_name(attr, name_pos)?;
    Ok(AttrPath {
        urn,
        attr: attr.to_owned(),
        sub_attr,
    })
}

/// ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_"), or `$ref`; `pos` is where `name` starts.
fn check_name(name: &str, pos: usize) -> Result<(), FilterError> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let mut chars = name.char_indices();
    match chars.next() {
        None => return Err(FilterError::new(pos, "expected an attribute name")),
        Some((_, c)) if !c.is_ascii_alphabetic() => {
            return Err(FilterError::new(
                pos,
                format!("attribute name \"{name}\" must start with a letter"),
            ));
        }
        Some(_) => {}
    }
    match chars.find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        Some((i, c)) => Err(FilterError::new(
            pos + i,
            format!("invalid character {c:?} in attribute name \"{name}\""),
        )),
        None => Ok(()),
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, _) = COMPARE_OPS
            .iter()
            .find(|(_, op)| op == self)
            .ok_or(fmt::Error)?;
        f.write_str(name)
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
        }
    }
}

/// Canonical filter text that [`parse`] reads back to an equal AST: only the parentheses
/// that precedence and left-associativity require.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn operand(f: &mut fmt::Formatter<'_>, x: &Filter, paren: bool) -> fmt::Result {
            if paren {
                write!(f, "({x})")
            } else {
                write!(f, "{x}")
            }
        }
        match self {
            Self::And(l, r) => {
                operand(f, l, matches!(**l, Self::Or(..)))?;
                f.write_str(" and ")?;
                operand(f, r, matches!(**r, Self::And(..) | Self::Or(..)))
            }
            Self::Or(l, r) => {
                operand(f, l, false)?;
                f.write_str(" or ")?;
                operand(f, r, matches!(**r, Self::Or(..)))
            }
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::Present(path) => write!(f, "{path} pr"),
            Self::Compare(path, op, value) => write!(f, "{path} {op} {value}"),
            Self::ValuePath(path, inner) => write!(f, "{path}[{inner}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path(attr: &str) -> AttrPath {
        AttrPath {
            urn: None,
            attr: attr.to_owned(),
            sub_attr: None,
        }
    }

    fn sub(attr: &str, sub_attr: &str) -> AttrPath {
        AttrPath {
            sub_attr: Some(sub_attr.to_owned()),
            ..path(attr)
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::String(v.to_owned())
    }

    fn num(v: &str) -> CompValue {
        CompValue::Number(v.parse().unwrap())
    }

    fn cmp(p: AttrPath, op: CompareOp, v: CompValue) -> Filter {
        Filter::Compare(p, op, v)
    }

    fn eq(attr: &str, v: CompValue) -> Filter {
        cmp(path(attr), CompareOp::Eq, v)
    }

    fn pr(attr: &str) -> Filter {
        Filter::Present(path(attr))
    }

    fn and(l: Filter, r: Filter) -> Filter {
        Filter::And(Box::new(l), Box::new(r))
    }

    fn or(l: Filter, r: Filter) -> Filter {
        Filter::Or(Box::new(l), Box::new(r))
    }

    fn not(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    fn vp(p: AttrPath, f: Filter) -> Filter {
        Filter::ValuePath(p, Box::new(f))
    }

    fn ok(input: &str) -> Filter {
        parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    /// Asserts a parse error at `pos` whose message contains `needle`.
    fn err(input: &str, pos: usize, needle: &str) {
        let e = parse(input).expect_err(input);
        assert_eq!(e.pos, pos, "{input:?}: {e}");
        assert!(e.message.contains(needle), "{input:?}: {e}");
    }

    #[test]
    fn lone_paths() {
        assert_eq!(
            parse_path("name.familyName").unwrap(),
            sub("name", "familyName")
        );
        assert!(parse_path("").is_err());
        assert!(parse_path("a b").is_err());
        assert!(parse_path("emails[type eq \"x\"]").is_err());
        assert!(parse_path("1abc").is_err());
    }

    #[test]
    fn attr_paths() {
        assert_eq!(ok("userName pr"), pr("userName"));
        assert_eq!(
            ok("name.givenName pr"),
            Filter::Present(sub("name", "givenName"))
        );
        assert_eq!(
            ok("members.$ref pr"),
            Filter::Present(sub("members", "$ref"))
        );
        assert_eq!(ok("x-y_1 pr"), pr("x-y_1"));
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            ok(&format!("{ent}:department eq \"Sales\"")),
            cmp(
                AttrPath {
                    urn: Some(ent.to_owned()),
                    ..path("department")
                },
                CompareOp::Eq,
                s("Sales")
            )
        );
        let uri = "https://example.com:8443/scim/Ext-1.0";
        assert_eq!(
            ok(&format!("{uri}:badge pr")),
            Filter::Present(AttrPath {
                urn: Some(uri.to_owned()),
                ..path("badge")
            })
        );
        let core = "URN:ietf:params:scim:schemas:core:2.0:User";
        assert_eq!(
            ok(&format!("{core}:name.givenName pr")),
            Filter::Present(AttrPath {
                urn: Some(core.to_owned()),
                ..sub("name", "givenName")
            })
        );
    }

    #[test]
    fn every_operator() {
        let ops = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        for (name, op) in ops {
            let expected = cmp(path("a"), op, s("x"));
            assert_eq!(ok(&format!("a {name} \"x\"")), expected);
            assert_eq!(ok(&format!("a {} \"x\"", name.to_uppercase())), expected);
            assert_eq!(op.to_string(), name);
        }
        assert_eq!(ok("title pr"), pr("title"));
        assert_eq!(ok("title PR"), pr("title"));
    }

    #[test]
    fn comp_values() {
        assert_eq!(ok("a eq true"), eq("a", CompValue::Bool(true)));
        assert_eq!(ok("a eq FALSE"), eq("a", CompValue::Bool(false)));
        assert_eq!(ok("a eq Null"), eq("a", CompValue::Null));
        assert_eq!(ok("a eq 42"), eq("a", num("42")));
        assert_eq!(ok("a eq -7"), eq("a", num("-7")));
        assert_eq!(ok("a eq 1.5e3"), eq("a", num("1500.0")));
        assert_eq!(
            ok("a eq 18446744073709551615"),
            eq("a", num("18446744073709551615"))
        );
        // Correctly rounded (serde_json's default parser is an ulp off here), so it round-trips.
        let precise = "10555632270.893751296";
        let f = ok(&format!("a eq {precise}"));
        let exact = serde_json::Number::from_f64(precise.parse().unwrap()).unwrap();
        assert_eq!(f, eq("a", CompValue::Number(exact)));
        assert_eq!(parse(&f.to_string()), Ok(f));
        assert_eq!(ok("a eq \"\""), eq("a", s("")));
        assert_eq!(ok("a eq \"true\""), eq("a", s("true")));
        assert_eq!(ok("a eq \"a b)c]\""), eq("a", s("a b)c]")));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            ok(r#"a eq "q\" b\\ s\/ \b\f\n\r\t""#),
            eq("a", s("q\" b\\ s/ \u{8}\u{c}\n\r\t"))
        );
        assert_eq!(ok(r#"a eq "\u00e9\u00E9""#), eq("a", s("éé")));
        assert_eq!(ok(r#"a eq "\ud83d\ude00""#), eq("a", s("😀")));
        assert_eq!(ok("a eq \"日本 😀\""), eq("a", s("日本 😀")));
    }

    #[test]
    fn unquoted_values() {
        assert_eq!(ok("externalId eq jyoung"), eq("externalId", s("jyoung")));
        assert_eq!(
            ok("id eq 2819c223-7f76-453a-919d-413861904646"),
            eq("id", s("2819c223-7f76-453a-919d-413861904646"))
        );
        assert_eq!(ok("(a eq x)"), eq("a", s("x")));
        assert_eq!(ok("e[a eq x]"), vp(path("e"), eq("a", s("x"))));
        assert_eq!(ok("a eq björn and b pr"), and(eq("a", s("björn")), pr("b")));
    }

    #[test]
    fn precedence_and_associativity() {
        let (a, b, c) = (eq("a", num("1")), eq("b", num("2")), eq("c", num("3")));
        assert_eq!(
            ok("a eq 1 or b eq 2 and c eq 3"),
            or(a.clone(), and(b.clone(), c.clone()))
        );
        assert_eq!(
            ok("a eq 1 and b eq 2 or c eq 3"),
            or(and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            ok("a eq 1 and b eq 2 and c eq 3"),
            and(and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            ok("a eq 1 or b eq 2 or c eq 3"),
            or(or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            ok("(a eq 1 or b eq 2) and c eq 3"),
            and(or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            ok("a eq 1 AND not (b eq 2) Or c eq 3"),
            or(and(a, not(b)), c)
        );
    }

    #[test]
    fn not_and_parens() {
        assert_eq!(ok("not (a pr)"), not(pr("a")));
        assert_eq!(ok("NOT(a pr)"), not(pr("a")));
        assert_eq!(ok("not (not (a pr))"), not(not(pr("a"))));
        assert_eq!(ok("((a pr))"), pr("a"));
        assert_eq!(ok(" \t\n( a pr )\r\n"), pr("a"));
        // Keywords are only keywords where the grammar expects them.
        assert_eq!(ok("not pr"), pr("not"));
        assert_eq!(ok("and pr and or pr"), and(pr("and"), pr("or")));
        assert_eq!(
            ok(
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
            ),
            and(
                cmp(path("userType"), CompareOp::Ne, s("Employee")),
                not(or(
                    cmp(path("emails"), CompareOp::Co, s("example.com")),
                    cmp(sub("emails", "value"), CompareOp::Co, s("example.org"))
                ))
            )
        );
    }

    #[test]
    fn value_paths() {
        assert_eq!(
            ok(r#"emails[type eq "work" and value co "@example.org"]"#),
            vp(
                path("emails"),
                and(
                    eq("type", s("work")),
                    cmp(path("value"), CompareOp::Co, s("@example.org"))
                )
            )
        );
        assert_eq!(
            ok(r#"emails[not (type eq "work") or (primary eq true)] and a pr"#),
            and(
                vp(
                    path("emails"),
                    or(
                        not(eq("type", s("work"))),
                        eq("primary", CompValue::Bool(true))
                    )
                ),
                pr("a")
            )
        );
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            ok(&format!("{ent}:manager[value eq \"42\"]")),
            vp(
                AttrPath {
                    urn: Some(ent.to_owned()),
                    ..path("manager")
                },
                eq("value", s("42"))
            )
        );
    }

    #[test]
    fn value_path_with_sub_attribute() {
        assert_eq!(
            ok(r#"emails[type eq "work"].value eq "a@b.c""#),
            vp(
                path("emails"),
                and(eq("type", s("work")), eq("value", s("a@b.c")))
            )
        );
        assert_eq!(
            ok(r#"emails[type eq "work"].value pr and x pr"#),
            and(
                vp(path("emails"), and(eq("type", s("work")), pr("value"))),
                pr("x")
            )
        );
    }

    #[test]
    fn display_is_canonical() {
        let text = r#"a eq "x\"y" and (b pr or c gt 1.5) and not (d[e lt -3 or f ne null])"#;
        assert_eq!(ok(text).to_string(), text);
        assert_eq!(
            ok("a pr OR (b pr OR c pr)").to_string(),
            "a pr or (b pr or c pr)"
        );
        assert_eq!(
            ok("a pr and (b pr and c pr)").to_string(),
            "a pr and (b pr and c pr)"
        );
        assert_eq!(
            ok("(a pr and b pr) or c pr").to_string(),
            "a pr and b pr or c pr"
        );
        assert_eq!(
            FilterError::new(3, "oops").to_string(),
            "at position 3: oops"
        );
    }

    #[test]
    fn errors() {
        err("", 0, "empty filter");
        err("   ", 3, "empty filter");
        err(
            r#"userName eq "a" foo"#,
            16,
            r#"expected "and", "or" or the end of the filter, found "foo""#,
        );
        err("userName eq", 11, r#"expected a value after "eq""#);
        err("(userName eq)", 12, r#"expected a value after "eq""#);
        err(
            "userName",
            8,
            r#"expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName""#,
        );
        err("userName \"x\"", 9, "expected a comparison operator");
        err(
            r#"userName like "x""#,
            9,
            r#"unknown comparison operator "like""#,
        );
        err(r#"title pr "x""#, 9, r#""pr" does not take a value"#);
        err("title pr 12", 9, r#""pr" does not take a value"#);
        err("title pr null", 9, r#""pr" does not take a value"#);
        err(
            "title pr x",
            9,
            r#"expected "and", "or" or the end of the filter, found "x""#,
        );
        err(r#""bjensen""#, 0, "must start with an attribute path");
        err("bjensen", 7, "expected a comparison operator");
        err("42", 0, "must start with a letter");
        err("not a pr", 4, r#"expected "(" after "not""#);
        err(
            "a pr and",
            8,
            "unexpected end of filter; expected an attribute path",
        );
        err("a pr or or", 10, "expected a comparison operator");
    }

    #[test]
    fn delimiter_errors() {
        err("(a pr", 0, "unbalanced parenthesis");
        err("a pr)", 4, "unbalanced parenthesis");
        err("((a pr)", 0, "unbalanced parenthesis");
        err(
            "(a pr b pr)",
            6,
            r#"expected "and", "or" or ")", found "b""#,
        );
        err("()", 1, "empty parentheses");
        err("emails[type pr", 6, "unbalanced bracket");
        err("emails[type pr]]", 15, "unbalanced bracket");
        err("emails[]", 7, "empty value filter");
        err("emails[ ]", 8, "empty value filter");
        err("emails[value[type pr]]", 12, "cannot be nested");
        err("emails[a pr and x[type pr]]", 17, "cannot be nested");
        err(
            "name.givenName[type pr]",
            14,
            "cannot follow a sub-attribute",
        );
        err("emails[type pr].", 16, "expected an attribute name");
        err(
            "emails[type pr].value",
            21,
            r#"after "emails[type pr].value""#,
        );
        err("emails[type pr)", 14, r#"expected "and", "or" or "]""#);
        err("[a pr]", 0, "expected an attribute path");
    }

    #[test]
    fn attr_name_errors() {
        err("a.b.c pr", 3, "at most one sub-attribute");
        err("name. pr", 5, "expected an attribute name");
        err(".a pr", 0, "expected an attribute name");
        err("a.1 pr", 2, "must start with a letter");
        err("us€r pr", 2, "invalid character '€'");
        err("foo:bar pr", 3, "invalid character ':'");
        err("urn:name pr", 0, "expected a schema URN");
        err("urn:x:na!me pr", 8, "invalid character '!'");
        err("urn:x: pr", 6, "expected an attribute name");
    }

    #[test]
    fn value_errors() {
        err(r#"a eq "abc"#, 5, "unterminated string");
        err(r#"a eq "abc\"#, 5, "unterminated string");
        err(r#"a eq "\x""#, 6, r#"invalid escape "\x""#);
        err(r#"a eq "\u12""#, 6, "4 hexadecimal digits");
        err(r#"a eq "\u+123""#, 6, "4 hexadecimal digits");
        err(r#"a eq "é\ud83d""#, 8, "unpaired surrogate");
        err(r#"a eq "\ud83d\u0041""#, 6, "unpaired surrogate");
        err(r#"a eq "\ude00""#, 6, "unpaired surrogate");
        err("a eq \"a\u{1}\"", 7, "control characters");
        err("a eq 01", 5, "invalid or out-of-range number");
        err("a eq 1.", 5, "invalid or out-of-range number");
        err("a eq 1e400", 5, "invalid or out-of-range number");
        err("a eq -", 5, "invalid or out-of-range number");
        err("a eq (x)", 5, "expected a value");
    }

    #[test]
    fn limits() {
        let long = format!("a eq \"{}\"", "x".repeat(MAX_FILTER_LEN));
        err(&long, MAX_FILTER_LEN, "longer than 4096 bytes");
        err(&"(".repeat(100_000), MAX_FILTER_LEN, "longer than");

        let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(ok(&nested(MAX_FILTER_DEPTH)), pr("a"));
        err(
            &nested(MAX_FILTER_DEPTH + 1),
            MAX_FILTER_DEPTH,
            "nests deeper than 32 levels",
        );
        err(&"(".repeat(4000), MAX_FILTER_DEPTH, "nests deeper");
        err(
            &"not (".repeat(800),
            5 * MAX_FILTER_DEPTH + 4,
            "nests deeper",
        );
        err(&format!("{}a pr", "e[".repeat(2)), 3, "cannot be nested");

        // Long and/or chains are iterative: no depth limit, no deep recursion.
        let chain = format!("{}a eq 1", "a eq 1 and ".repeat(350));
        let parsed = ok(&chain);
        assert_eq!(parse(&parsed.to_string()), Ok(parsed));
        let dangling = "a eq 1 and ".repeat(372);
        err(&dangling, dangling.len(), "unexpected end of filter");
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            9 => "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
            1 => Just("$ref".to_owned()),
            1 => prop_oneof![Just("and"), Just("OR"), Just("not"), Just("pr"), Just("eq")]
                .prop_map(str::to_owned),
        ]
    }

    fn attr_path_strategy(allow_sub: bool) -> impl Strategy<Value = AttrPath> {
        let urn = proptest::option::of("(urn|URN):[a-z]{1,5}(:[a-zA-Z0-9.]{1,5}){0,3}");
        let sub = if allow_sub {
            proptest::option::of(name()).boxed()
        } else {
            Just(None).boxed()
        };
        (urn, name(), sub).prop_map(|(urn, attr, sub_attr)| AttrPath {
            urn,
            attr,
            sub_attr,
        })
    }

    fn comp_value() -> impl Strategy<Value = CompValue> {
        let number = prop_oneof![
            any::<i64>().prop_map(serde_json::Number::from),
            any::<u64>().prop_map(serde_json::Number::from),
            any::<f64>().prop_filter_map("not finite", serde_json::Number::from_f64),
        ];
        prop_oneof![
            Just(CompValue::Null),
            any::<bool>().prop_map(CompValue::Bool),
            number.prop_map(CompValue::Number),
            "[a-z\"\\\\/ ()\\[\\]é😀\t\n\u{1}]{0,8}".prop_map(CompValue::String),
            proptest::collection::vec(any::<char>(), 0..8)
                .prop_map(|cs| CompValue::String(cs.into_iter().collect())),
        ]
    }

    fn op() -> impl Strategy<Value = CompareOp> {
        proptest::sample::select(&CompareOp::ALL[..])
    }

    /// Logical combinations of comparisons; value paths only if `inner` generates them.
    fn combine(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
        leaf.prop_recursive(4, 24, 2, |f| {
            prop_oneof![
                (f.clone(), f.clone()).prop_map(|(l, r)| and(l, r)),
                (f.clone(), f.clone()).prop_map(|(l, r)| or(l, r)),
                f.prop_map(not),
            ]
        })
        .boxed()
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            attr_path_strategy(true).prop_map(Filter::Present),
            (attr_path_strategy(true), op(), comp_value())
                .prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
        ]
        .boxed();
        let value_path = (attr_path_strategy(false), combine(leaf.clone()))
            .prop_map(|(p, f)| vp(p, f))
            .boxed();
        combine(prop_oneof![3 => leaf, 1 => value_path].boxed())
    }

    fn token() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "(", ")", "[", "]", "\"", "\\", "\"x\"", "\\u", "\\ud83d", "not", "and", "or", "pr",
            "eq", "GT", "a", "a.b", "urn:x:y", "urn:", ".", ".v", "$ref", "1", "-1.5e3", "true",
            "null", "é", " ", "\t",
        ])
    }

    /// Token soup, and valid filter text with a token spliced in or cut short.
    fn filterish() -> impl Strategy<Value = String> {
        let soup = proptest::collection::vec((token(), any::<bool>()), 0..40).prop_map(|ts| {
            ts.into_iter()
                .map(|(t, space)| if space { format!("{t} ") } else { t.to_owned() })
                .collect()
        });
        let spliced = (
            filter(),
            any::<prop::sample::Index>(),
            token(),
            any::<bool>(),
        )
            .prop_map(|(f, at, tok, cut)| {
                let text = f.to_string();
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let tail = if cut { "" } else { &text[at..] };
                format!("{}{tok}{tail}", &text[..at])
            });
        prop_oneof![soup, spliced]
    }

    proptest! {
        #[test]
        fn display_round_trips(f in filter()) {
            let text = f.to_string();
            prop_assume!(text.len() <= MAX_FILTER_LEN);
            prop_assert_eq!(parse(&text), Ok(f), "{}", text);
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_filterish_text(text in filterish()) {
            if let Ok(f) = parse(&text) {
                // Anything accepted renders to text that parses to the same AST.
                prop_assert_eq!(parse(&f.to_string()), Ok(f));
            }
        }

        /// Attribute and PATCH paths: any text parses or fails with a position inside it, and
        /// binding what parsed to either schema never panics (the `path` fuzz target's rule).
        #[test]
        fn paths_never_panic(text in prop_oneof![any::<String>(), filterish()]) {
            use crate::scim::resolve;
            use crate::scim::resource::ResourceKind;
            match parse_path(&text) {
                Ok(path) => {
                    for kind in [ResourceKind::User, ResourceKind::Group] {
                        let _ = resolve::bind(&path, kind, &crate::scim::registry::Registry::builtin());
                        let _ = resolve::resolve_sort(&path, kind, &crate::scim::registry::Registry::builtin());
                    }
                }
                Err(e) => prop_assert!(e.pos <= text.len()),
            }
            match parse_patch_path(&text) {
                Ok(p) => {
                    for kind in [ResourceKind::User, ResourceKind::Group] {
                        let _ = resolve::bind(&p.attr, kind, &crate::scim::registry::Registry::builtin());
                    }
                }
                Err(e) => prop_assert!(e.pos <= text.len()),
            }
        }

        #[test]
        fn errors_point_inside_the_input(text in filterish()) {
            if let Err(e) = parse(&text) {
                prop_assert!(e.pos <= text.len());
                prop_assert!(text.is_char_boundary(e.pos));
            }
        }
    }

    #[test]
    fn patch_paths_of_every_form() {
        let p = parse_patch_path("name.givenName").unwrap();
        assert_eq!(
            (p.attr, p.filter, p.sub_attr),
            (sub("name", "givenName"), None, None)
        );
        let p = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, path("emails"));
        assert_eq!(
            p.filter,
            Some(Filter::Compare(path("type"), CompareOp::Eq, s("work")))
        );
        assert_eq!(p.sub_attr.as_deref(), Some("value"));
        let p = parse_patch_path(r#"members[value eq "a b"]"#).unwrap();
        assert_eq!((p.attr, p.sub_attr), (path("members"), None));
        let p = parse_patch_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(p.attr.attr, "manager");
        assert_eq!(p.attr.sub_attr.as_deref(), Some("value"));
        let p = parse_patch_path(r#"addresses[type eq "work" and primary eq true].postalCode"#)
            .unwrap();
        assert!(matches!(p.filter, Some(Filter::And(..))));
    }

    #[test]
    fn bad_patch_paths_say_where() {
        for (bad, pos) in [
            ("", 0),
            ("name.givenName[type eq \"x\"]", 14),
            ("emails[type eq \"work\"", 6),
            ("emails[]", 7),
            ("emails[type eq \"work\"]value", 22),
            ("emails[type eq \"work\"].", 23),
            ("emails[type zz \"work\"]", 12),
            ("a b", 0),
        ] {
            let err = parse_patch_path(bad).unwrap_err();
            assert_eq!(err.pos, pos, "{bad}: {err}");
        }
        assert!(parse_patch_path(&"a".repeat(MAX_FILTER_LEN + 1)).is_err());
    }
}

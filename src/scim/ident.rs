//! Unicode text for comparisons and identities: the case fold every caseExact=false comparison
//! uses, the uniqueness key of `userName` and group `displayName`, and the characters those
//! identifiers may not contain.
//!
//! - `fold`: compatibility caseless form (Unicode §3.13 D145): NFKC-normalised and fully
//!   case-folded, so `ß`/`SS`, `ς`/`Σ`, `ﬁ`/`fi`, `Ａ`/`a` and NFC/NFD spellings of `José`
//!   compare equal. ICU4X supplies the tables (Unicode's own, kept current by the Unicode
//!   Consortium); nothing here is a hand-written table.
//! - `key`: `fold`, trimmed of leading and trailing white space: what makes two identifiers
//!   one. The value itself is stored and returned exactly as sent.
//! - `forbidden`: invisible or reordering characters that would let two names look alike but
//!   differ — control (Cc), format (Cf: zero-width, bidi controls, BOM, soft hyphen, tag
//!   characters, …), line/paragraph separators (Zl, Zp) and every other
//!   Default_Ignorable_Code_Point (variation selectors, combining grapheme joiner, Hangul
//!   fillers, …) — and code points with no agreed look: private use (Co) and unassigned (Cn).
//!   `check` refuses them in a new identifier.
//!
//! Pure: no I/O.

use icu_casemap::CaseMapper;
use icu_normalizer::{ComposingNormalizer, DecomposingNormalizer};
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};

use super::schema::{Attribute, Kind, Uniqueness};
use crate::error::{Error, Result};

/// Case-folds a caseExact=false value for comparison and storage: NFKC of the full case fold
/// of the NFKD of the full case fold of the NFD (D145 compatibility caseless matching, whose
/// repeated fold makes it stable), in composed form. ASCII only needs lowercasing.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let case = CaseMapper::new();
    let nfd = DecomposingNormalizer::new_nfd().normalize(s);
    let folded = case.fold_string(&nfd);
    let nfkd = DecomposingNormalizer::new_nfkd().normalize(&folded);
    let folded = case.fold_string(&nfkd);
    ComposingNormalizer::new_nfkc()
        .normalize(&folded)
        .into_owned()
}

/// The uniqueness key of an identifier: `fold`, without leading and trailing white space
/// (Unicode White_Space, after NFKC has mapped no-break and ideographic spaces to U+0020).
pub fn key(s: &str) -> String {
    let folded = fold(s);
    match folded.trim() {
        trimmed if trimmed.len() == folded.len() => folded,
        trimmed => trimmed.to_string(),
    }
}

/// Whether values of `attr` are identifiers compared through `key`: the server-unique,
/// case-insensitive strings (`userName`, group `displayName`).
pub fn is_identifier(attr: &Attribute) -> bool {
    attr.kind == Kind::String && !attr.case_exact && attr.uniqueness == Uniqueness::Server
}

/// The first character an identifier may not contain, with its byte offset: General_Category
/// Cc, Cf, Co, Cn (the group `Other`, whose Cs no `str` holds), Zl or Zp, and any
/// Default_Ignorable_Code_Point.
pub fn forbidden(s: &str) -> Option<(usize, char)> {
    let refused = GeneralCategoryGroup::Other
        .union(GeneralCategoryGroup::LineSeparator)
        .union(GeneralCategoryGroup::ParagraphSeparator);
    let gc = CodePointMapData::<GeneralCategory>::new();
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    s.char_indices().find(|&(_, c)| {
        !(' '..='~').contains(&c) && (refused.contains(gc.get(c)) || ignorable.contains(c))
    })
}

/// Refuses a new value of the identifier `attr` (`userName`, `displayName`) that holds a
/// `forbidden` character or only white space: such names would look the same as others and
/// be different. `current` is the stored value being replaced: keeping it exactly as it is
/// is always allowed, so a resource stored before this rule can still be updated (and
/// deactivated) without a rename.
pub fn check(attr: &str, value: &str, current: Option<&str>) -> Result<()> {
    if current == Some(value) {
        return Ok(());
    }
    if let Some((at, c)) = forbidden(value) {
        return Err(Error::InvalidValue(format!(
            "attribute \"{attr}\" contains U+{:04X} at byte {at}: invisible (zero-width, bidi, \
             BOM, variation selector, filler), control, private-use, unassigned and line or \
             paragraph separator characters are not allowed in it",
            u32::from(c)
        )));
    }
    if key(value).is_empty() {
        return Err(Error::InvalidValue(format!(
            "attribute \"{attr}\" must contain more than white space"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn same(a: &str, b: &str) -> bool {
        key(a) == key(b)
    }

    #[test]
    fn full_case_folding() {
        assert!(same("straße", "STRASSE"));
        assert!(same("STRASSE", "strasse"));
        assert!(same("ẞ", "ss"));
        assert!(same("ΣΑΣ", "σασ"));
        assert!(same("ΣΑΣ", "σας"), "final sigma");
        assert!(same("ÉMILE", "émile"));
        assert!(same("İ", "i\u{307}"), "dotted capital I, non-Turkic");
        assert!(same("ǅ", "ǆ"));
        assert_eq!(key("ΣΑΣ"), "σασ");
        assert_eq!(key("σας"), "σασ");
        assert_eq!(key("Straße"), "strasse");
    }

    #[test]
    fn compatibility_normalisation() {
        assert!(same("ﬁle", "file"));
        assert!(same("ＡＢＣ", "abc"), "fullwidth");
        assert!(same("x²", "x2"));
        assert!(same("Ⅻ", "xii"));
        assert!(same("㎏", "kg"));
        assert!(same("K", "k"), "Kelvin sign");
        assert!(same("Å", "å"), "Angstrom sign");
    }

    #[test]
    fn canonical_equivalence() {
        assert!(same("Jos\u{e9}", "Jose\u{301}"));
        assert!(same("JOSE\u{301}", "jos\u{e9}"));
        assert!(
            same("\u{1e69}", "s\u{323}\u{307}"),
            "combining marks in canonical order"
        );
        assert!(same("s\u{307}\u{323}", "s\u{323}\u{307}"));
        assert!(same("한", "\u{1112}\u{1161}\u{11ab}"), "Hangul jamo");
        assert_eq!(key("Jose\u{301}"), "jos\u{e9}", "stored composed");
    }

    #[test]
    fn trimmed_but_inner_space_kept() {
        assert!(same(" bob ", "bob"));
        assert!(
            same("\u{a0}bob\u{3000}", "bob"),
            "no-break and ideographic spaces"
        );
        assert!(same("\tbob\n", "bob"));
        assert!(!same("bo b", "bob"));
        assert!(
            same("bo\u{a0}b", "bo b"),
            "NFKC: no-break space inside is a space"
        );
        assert_eq!(key("   "), "");
    }

    #[test]
    fn distinct_names_stay_distinct() {
        for (a, b) in [
            ("ana", "anna"),
            ("émile", "emile"),
            ("ı", "i"),
            ("straße", "strase"),
            ("bob", "b\u{f6}b"),
            ("a-b", "a_b"),
        ] {
            assert!(!same(a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn fold_keeps_white_space_key_trims_it() {
        assert_eq!(fold(" Ana "), " ana ");
        assert_eq!(key(" Ana "), "ana");
        assert_eq!(fold("ANA"), "ana");
        assert_eq!(fold("Straße"), "strasse");
    }

    #[test]
    fn forbidden_characters() {
        for c in [
            '\0',
            '\u{1}',
            '\t',
            '\n',
            '\r',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{9f}', // Cc
            '\u{ad}',
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}', // Cf
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{feff}',
            '\u{e0041}',
            '\u{2028}',
            '\u{2029}', // Zl, Zp
        ] {
            let s = format!("ab{c}cd");
            assert_eq!(forbidden(&s), Some((2, c)), "U+{:04X}", c as u32);
        }
        for ok in [
            "bjensen@example.com",
            "José Müller",
            "straße",
            "ΣΑΣ",
            "李小龙",
            "محمد",
            "a b",
            "\u{a0}x",
            "emoji 😀",
            "\u{301}",
        ] {
            assert_eq!(forbidden(ok), None, "{ok:?}");
        }
    }

    /// Invisible characters outside Cc/Cf/Zl/Zp (Default_Ignorable_Code_Point), private-use
    /// and unassigned code points: each made a name that looks like `bob` and is another key.
    #[test]
    fn default_ignorable_private_use_and_unassigned_characters_are_forbidden() {
        for c in [
            '\u{fe00}',
            '\u{fe0f}', // variation selectors
            '\u{e0100}',
            '\u{e01ef}', // variation selectors supplement
            '\u{34f}',   // combining grapheme joiner
            '\u{115f}',
            '\u{1160}',
            '\u{3164}',
            '\u{ffa0}', // Hangul fillers
            '\u{180b}',
            '\u{180f}', // Mongolian free variation selectors
            '\u{17b4}',
            '\u{17b5}',  // Khmer inherent vowels
            '\u{2065}',  // unassigned and default-ignorable
            '\u{e0fff}', // reserved default-ignorable
            '\u{50000}',
            '\u{378}',
            '\u{fdd0}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{10ffff}', // unassigned and noncharacters (Cn)
            '\u{e000}',
            '\u{f8ff}',
            '\u{f0000}',
            '\u{10fffd}', // private use (Co)
        ] {
            let s = format!("bob{c}");
            assert_eq!(forbidden(&s), Some((3, c)), "U+{:04X}", c as u32);
            assert_ne!(key(&s), key("bob"), "U+{:04X} looks alike", c as u32);
            assert!(check("userName", &s, None).is_err(), "U+{:04X}", c as u32);
            assert!(check("userName", &s, Some(&s)).is_ok(), "kept as stored");
        }
        for ok in [
            "❤",
            "한국어",
            "\u{1100}\u{1161}\u{11a8}",
            "ﾊﾝｶｸ",
            "Ωμέγα",
            "ᠮᠣᠩᠭᠣᠯ",
            "ខ្មែរ",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "👩🏽",
        ] {
            assert_eq!(forbidden(ok), None, "{ok:?}");
        }
    }

    #[test]
    fn check_refuses_new_invisible_or_blank_identifiers() {
        for bad in [
            "bob\u{0}",
            "bo\nb",
            "\u{202e}bob",
            "b\u{200b}ob",
            "\u{feff}bob",
        ] {
            match check("userName", bad, None) {
                Err(Error::InvalidValue(m)) => assert!(m.contains("userName") && m.contains("U+")),
                other => panic!("{bad:?}: {other:?}"),
            }
            assert!(
                check("userName", bad, Some("bob")).is_err(),
                "a rename to it"
            );
            assert!(check("userName", bad, Some(bad)).is_ok(), "kept as stored");
        }
        for blank in [" ", "\u{a0}\u{3000}", "\u{2003}"] {
            match check("displayName", blank, None) {
                Err(Error::InvalidValue(m)) => assert!(m.contains("white space"), "{m}"),
                other => panic!("{blank:?}: {other:?}"),
            }
        }
        for ok in [" Straße ", "Jose\u{301}", "ﬁle", "ΣΑΣ", "a b"] {
            assert!(check("userName", ok, None).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn identifiers_are_user_name_and_group_display_name() {
        use super::super::schema::{COMMON, GROUP, USER};
        fn ids(attrs: &[std::sync::Arc<Attribute>]) -> Vec<&str> {
            attrs
                .iter()
                .filter(|a| is_identifier(a))
                .map(|a| a.name.as_str())
                .collect()
        }
        assert_eq!(ids(&USER.attributes), ["userName"]);
        assert_eq!(ids(&GROUP.attributes), ["displayName"]);
        assert!(ids(&COMMON).is_empty(), "id and externalId are caseExact");
    }

    /// Text drawn from the troublesome parts of Unicode: ASCII, Latin with and without
    /// precomposed accents, combining marks, Greek sigma, ß, ligatures, compatibility forms,
    /// Hangul, spaces.
    fn text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "A", "z", "S", "s", "ß", "ẞ", "Σ", "σ", "ς", "é", "É", "e\u{301}", "\u{301}",
            "\u{323}", "\u{345}", "ﬁ", "ﬀ", "ǅ", "İ", "ı", "K", "Å", "ＡＢ", "²", "Ⅻ", "한",
            "\u{1100}", "\u{1161}", "\u{11a8}", " ", "\u{a0}", "\u{3000}", "ΐ", "ΰ", "ᾳ", "ῼ", "ŉ",
            "ǰ", "0", "@", ".",
        ]);
        prop::collection::vec(
            prop_oneof![
                pieces.prop_map(str::to_string),
                any::<char>().prop_map(String::from)
            ],
            0..8,
        )
        .prop_map(|v| v.concat())
    }

    /// Every cased code point folds with its upper and lower case, except dotless ı, whose
    /// capital is I: default (non-Turkic) folding keeps ı a letter of its own.
    #[test]
    fn every_code_point_matches_its_other_cases() {
        let odd: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_lowercase() || c.is_uppercase() || c.to_lowercase().ne([*c]))
            .filter(|c| {
                let s = c.to_string();
                let k = key(&s);
                key(&s.to_uppercase()) != k || key(&s.to_lowercase()) != k || key(&k) != k
            })
            .collect();
        assert_eq!(odd, ['\u{131}']);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fold_and_key_are_idempotent(s in text()) {
            let f = fold(&s);
            prop_assert_eq!(fold(&f), f.clone());
            let k = key(&s);
            prop_assert_eq!(key(&k), k.clone());
        }

        #[test]
        fn case_does_not_matter(s in text()) {
            // Uppercasing itself changes the text there: ı's capital is I, and the capital of
            // iota subscript (U+0345) is a spacing Ι that takes over a following accent.
            prop_assume!(!s.contains('ı'));
            prop_assume!(!DecomposingNormalizer::new_nfd().normalize(&s).contains('\u{345}'));
            prop_assert_eq!(key(&s.to_uppercase()), key(&s));
            prop_assert_eq!(key(&s.to_lowercase()), key(&s));
            prop_assert_eq!(fold(&s.to_uppercase()), fold(&s));
        }

        #[test]
        fn normalisation_form_does_not_matter(s in text()) {
            let nfc = ComposingNormalizer::new_nfc().normalize(&s).into_owned();
            let nfd = DecomposingNormalizer::new_nfd().normalize(&s).into_owned();
            let nfkc = ComposingNormalizer::new_nfkc().normalize(&s).into_owned();
            prop_assert_eq!(key(&nfc), key(&s));
            prop_assert_eq!(key(&nfd), key(&s));
            prop_assert_eq!(key(&nfkc), key(&s));
        }

        #[test]
        fn surrounding_white_space_does_not_matter(s in text(), pad in "[ \u{a0}\u{3000}\t]{0,3}") {
            prop_assert_eq!(key(&format!("{pad}{s}{pad}")), key(&s));
        }

        #[test]
        fn the_key_is_composed_and_trimmed(s in text()) {
            let k = key(&s);
            prop_assert!(ComposingNormalizer::new_nfkc().is_normalized(&k));
            prop_assert_eq!(k.trim(), k.as_str());
        }

        #[test]
        fn ascii_fast_path_agrees(s in "[ -~]{0,12}") {
            let case = CaseMapper::new();
            let slow = ComposingNormalizer::new_nfkc().normalize(&case.fold_string(&s)).into_owned();
            prop_assert_eq!(fold(&s), slow);
        }
    }
}

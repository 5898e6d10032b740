//! Reactions are exactly one RGI emoji, fully qualified: single code points, ZWJ
//! sequences, skin-tone variants, flags and keycaps all count as one. The list comes
//! from the `emojis` crate's Unicode data, not a hand-kept table; the OpenAPI document
//! enumerates the same list, so the fuzzer and the handler agree.

use std::collections::HashSet;
use std::sync::LazyLock;

static ALL: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for emoji in emojis::iter() {
        let variants = emoji.skin_tones().into_iter().flatten();
        for e in std::iter::once(emoji).chain(variants) {
            if seen.insert(e.as_str()) {
                all.push(e.as_str());
            }
        }
    }
    all
});

static SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| ALL.iter().copied().collect());

/// One RGI emoji, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emoji(&'static str);

impl Emoji {
    /// `Some` when `text` is exactly one fully-qualified RGI emoji.
    pub fn parse(text: &str) -> Option<Self> {
        SET.get(text).map(|e| Self(e))
    }

    /// The emoji.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Every accepted emoji, in Unicode CLDR order (for the OpenAPI document).
pub fn all() -> &'static [&'static str] {
    &ALL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rgi_emoji_is_accepted_and_anything_else_refused() {
        for ok in [
            "👍",
            "👍🏽", // skin tone
            "👨‍👩‍👧‍👦", // ZWJ family
            "🧑🏻‍🤝‍🧑🏿", // ZWJ with two skin tones
            "🇫🇷", // flag
            "#️⃣", // keycap
            "❤️", // with VS16
            "🏳️‍🌈",
        ] {
            assert!(Emoji::parse(ok).is_some(), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "ok",
            "👍👍", // two emoji
            "👍 ",
            "❤",         // unqualified (no VS16): not the RGI form
            "🇫",         // half a flag
            "🇦🇦",        // not a region
            "👨‍🦲‍👩",        // not an RGI sequence
            "\u{1F3FD}", // a skin tone alone
        ] {
            assert!(Emoji::parse(bad).is_none(), "{bad:?}");
        }
        assert!(all().len() > 3000);
    }
}

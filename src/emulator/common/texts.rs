//! Error texts: where the nucleus's text is fixed, the emulator sends it first and its own
//! explanation after it, as `<nucleus text> (ggipc: <explanation>)`. A component that
//! compares the text with `starts_with` (or `contains`) on the nucleus's words sees them;
//! the explanation is only for the person reading the log.

/// `<nucleus> (ggipc: <explanation>)`, or `nucleus` alone when there is nothing to add.
pub(crate) fn nucleus_text(nucleus: &str, explanation: &str) -> String {
    if explanation.is_empty() {
        nucleus.to_owned()
    } else {
        format!("{nucleus} (ggipc: {explanation})")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_nucleus_text_comes_first() {
        assert_eq!(
            super::nucleus_text("Key not found", "no key a.b"),
            "Key not found (ggipc: no key a.b)"
        );
        assert_eq!(super::nucleus_text("Not Authorized", ""), "Not Authorized");
    }
}

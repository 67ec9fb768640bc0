"""Cross-language comparison of answers: embedding similarity and chrF."""

"""Per-answer detectors: language, reasoning traces, refusal and official-line lexicons, labels."""

"""Evidence bundles: manifest, transcripts, results, tables, figures, report.html, SHA256SUMS; and their verification."""

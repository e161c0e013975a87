"""The gallery: enrolled subjects, their encrypted templates, 1:1 and 1:N decisions, and the audit trail."""

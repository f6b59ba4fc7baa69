"""The security suite: object-level access, headers and error pages, fuzzing, SQL injection, XSS."""

"""Build, check and deploy tools (CI and make targets); the local dev stack is in local/."""

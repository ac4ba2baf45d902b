"""Pure cryptographic building blocks: key rings, keyed hashing, sealing, code alphabets."""

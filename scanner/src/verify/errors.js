// Error classes: CodecError (malformed encoded data, with a reason code) and TrustError
// (unusable trust material: a configuration error, CLI exit 2), as verifier/errors.py.

export class CodecError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

export class TrustError extends Error {
  constructor(reason, message) {
    super(message);
    this.reason = reason;
  }
}

export class ConfigError extends Error {}

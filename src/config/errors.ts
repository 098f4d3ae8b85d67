/** A configuration problem, always naming the key at fault so an operator can fix it in one read. */
export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(key ? `config: ${key}: ${message}` : `config: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

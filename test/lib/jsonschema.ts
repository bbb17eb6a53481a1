/**
 * A JSON Schema (draft 2020-12) validator for the subset t6's schemas use (docs/*.schema.json),
 * so that tests check every `--json` output without a dependency: type (one or a list,
 * `integer` included), enum, required, properties, additionalProperties (false or a schema),
 * items, minimum, maximum, minLength, pattern, format `date-time` (RFC 3339, checked with a
 * regular expression), oneOf, and `$ref` into the root's `$defs`.
 *
 * A keyword outside that subset is an error, not ignored: a schema cannot claim a rule that
 * no test checks. As in JSON Schema, a keyword about one type (minimum, properties…) says
 * nothing about values of another type (null passes `minimum`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './harness.ts';

/** A schema node (draft 2020-12 object form). */
export type Schema = { readonly [keyword: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs']);
const KEYWORDS = new Set([
  'type', 'enum', 'required', 'properties', 'additionalProperties', 'items', 'minimum', 'maximum',
  'minLength', 'pattern', 'format', 'oneOf', '$ref',
]);

/** RFC 3339 date-time (JSON Schema's `date-time`), fractional seconds of any length. */
const DATE_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** A schema of docs/ (`service`, `log-line`), parsed. */
export function loadSchema(name: string): Schema {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', `${name}.schema.json`), 'utf8')) as Schema;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value; // string, number, boolean, object (undefined never comes from JSON)
}

function hasType(value: unknown, type: string): boolean {
  if (type === 'integer') return Number.isInteger(value);
  return typeOf(value) === type;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeOf(v) === 'object';

/** Every way `value` breaks `schema` (empty: valid), each as `path: what`. */
export function validate(schema: Schema, value: unknown): string[] {
  return validateAt(schema, schema, value, '$');
}

function resolve(root: Schema, ref: string): Schema {
  const m = /^#\/\$defs\/([^/]+)$/.exec(ref);
  const target = m === null ? undefined : (root.$defs as Record<string, Schema> | undefined)?.[m[1]!];
  if (target === undefined) throw new Error(`unsupported or dangling $ref ${ref}`);
  return target;
}

function check(root: Schema, schema: Schema, value: unknown, at: string, errors: string[]): void {
  for (const key of Object.keys(schema)) {
    if (!ANNOTATIONS.has(key) && !KEYWORDS.has(key)) throw new Error(`${at}: schema keyword ${key} is not supported by this validator`);
  }
  if (typeof schema.$ref === 'string') check(root, resolve(root, schema.$ref), value, at, errors);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => hasType(value, t))) errors.push(`${at}: ${JSON.stringify(value)} is not of type ${types.join(' or ')}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === value)) {
    errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (Array.isArray(schema.oneOf)) {
    const passing = (schema.oneOf as Schema[]).filter((s) => validateAt(root, s, value, at).length === 0).length;
    if (passing !== 1) errors.push(`${at}: ${JSON.stringify(value)} matches ${passing} of oneOf's ${schema.oneOf.length} schemas, not exactly 1`);
  }
  if (typeof value === 'number') checkNumber(schema, value, at, errors);
  if (typeof value === 'string') checkString(schema, value, at, errors);
  if (isObject(value)) checkObject(root, schema, value, at, errors);
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((item, i) => check(root, schema.items as Schema, item, `${at}[${i}]`, errors));
  }
}

function validateAt(root: Schema, schema: Schema, value: unknown, at: string): string[] {
  const errors: string[] = [];
  check(root, schema, value, at, errors);
  return errors;
}

function checkNumber(schema: Schema, value: number, at: string, errors: string[]): void {
  if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push(`${at}: ${value} is below ${schema.minimum}`);
  if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push(`${at}: ${value} is above ${schema.maximum}`);
}

function checkString(schema: Schema, value: string, at: string, errors: string[]): void {
  if (typeof schema.minLength === 'number' && [...value].length < schema.minLength) errors.push(`${at}: ${JSON.stringify(value)} is shorter than ${schema.minLength}`);
  if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) errors.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  if (schema.format !== undefined) {
    if (schema.format !== 'date-time') throw new Error(`${at}: format ${String(schema.format)} is not supported by this validator`);
    if (!DATE_TIME.test(value)) errors.push(`${at}: ${JSON.stringify(value)} is not an RFC 3339 date-time`);
  }
}

function checkObject(root: Schema, schema: Schema, value: Record<string, unknown>, at: string, errors: string[]): void {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  for (const name of (schema.required ?? []) as string[]) {
    if (!Object.hasOwn(value, name)) errors.push(`${at}: required property ${name} is missing`);
  }
  for (const [name, v] of Object.entries(value)) {
    const sub = properties[name];
    if (sub !== undefined) check(root, sub, v, `${at}.${name}`, errors);
    else if (schema.additionalProperties === false) errors.push(`${at}: property ${name} is not allowed`);
    else if (isObject(schema.additionalProperties)) check(root, schema.additionalProperties, v, `${at}.${name}`, errors);
  }
}

/** Asserts that `value` is valid; the message lists every problem and the value. */
export function assertValid(schema: Schema, value: unknown, what: string): void {
  const errors = validate(schema, value);
  if (errors.length > 0) throw new Error(`${what} does not follow ${String(schema.title)}:\n  ${errors.join('\n  ')}\nvalue: ${JSON.stringify(value)}`);
}

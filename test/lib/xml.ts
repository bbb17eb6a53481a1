/**
 * A small XML well-formedness check for tests (the SVG t6 draws): elements nest and close,
 * attributes are quoted and unique, references are known entities or character
 * references, text has no raw `<` or `&`. Not a validating parser; enough to catch what
 * a drawing made as text gets wrong. Returns the problems (empty: well-formed) and the
 * elements by name.
 */
export interface XmlCheck {
  problems: string[];
  /** How many elements of each name. */
  counts: Map<string, number>;
  root: string | undefined;
}

const NAME = /^[A-Za-z_:][\w.:-]*$/;
const REFERENCE = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function checkText(text: string, where: string, problems: string[]): void {
  const stripped = text.replace(REFERENCE, '');
  if (stripped.includes('&')) problems.push(`${where}: a bare or unknown & reference`);
  if (stripped.includes('<')) problems.push(`${where}: a raw <`);
}

function checkAttributes(tag: string, body: string, problems: string[]): void {
  const seen = new Set<string>();
  let rest = body.trim();
  while (rest !== '') {
    const m = /^([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')\s*/.exec(rest);
    if (m === null) { problems.push(`<${tag}>: malformed attributes at ${JSON.stringify(rest.slice(0, 40))}`); return; }
    if (!NAME.test(m[1]!)) problems.push(`<${tag}>: bad attribute name ${m[1]}`);
    if (seen.has(m[1]!)) problems.push(`<${tag}>: attribute ${m[1]} twice`);
    seen.add(m[1]!);
    checkText(m[3] ?? m[4] ?? '', `<${tag} ${m[1]}>`, problems);
    rest = rest.slice(m[0].length);
  }
}

/** Checks `xml`; see the module's comment. */
export function checkXml(xml: string): XmlCheck {
  const problems: string[] = [];
  const counts = new Map<string, number>();
  const stack: string[] = [];
  let root: string | undefined;
  let i = 0;
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    const textPart = body.slice(i, lt < 0 ? undefined : lt);
    if (stack.length === 0 && textPart.trim() !== '') problems.push(`text outside the root: ${JSON.stringify(textPart.slice(0, 40))}`);
    checkText(textPart, `text at ${i}`, problems);
    if (lt < 0) break;
    if (body.startsWith('<!--', lt)) { const end = body.indexOf('-->', lt); if (end < 0) { problems.push('unclosed comment'); break; } i = end + 3; continue; }
    const gt = body.indexOf('>', lt);
    if (gt < 0) { problems.push(`unclosed tag at ${lt}`); break; }
    const inner = body.slice(lt + 1, gt);
    i = gt + 1;
    if (inner.startsWith('/')) {
      const name = inner.slice(1).trim();
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = inner.endsWith('/');
    const m = /^([^\s/>]+)([\s\S]*?)\/?$/.exec(inner);
    if (m === null || !NAME.test(m[1]!)) { problems.push(`bad tag <${inner.slice(0, 40)}>`); continue; }
    const name = m[1]!;
    if (stack.length === 0) {
      if (root !== undefined) problems.push(`a second root element <${name}>`);
      root = name;
    }
    counts.set(name, (counts.get(name) ?? 0) + 1);
    checkAttributes(name, m[2]!, problems);
    if (!selfClosing) stack.push(name);
  }
  if (stack.length > 0) problems.push(`unclosed elements: ${stack.join(' > ')}`);
  if (root === undefined) problems.push('no root element');
  return { problems, counts, root };
}

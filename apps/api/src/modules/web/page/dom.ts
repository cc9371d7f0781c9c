/** `true` is an empty attribute; `false`, `null` and `undefined` leave the attribute out. */
export type AttributeValue = string | number | boolean | null | undefined;

/** The page's element for `selector`, of the kind its markup has: a missing one is a bug here. */
export function $(selector: string): HTMLElement;
export function $<E extends Element>(selector: string, kind: { new (): E; prototype: E }): E;
export function $(selector: string, kind: { new (): Element } = HTMLElement): Element {
  const found = document.querySelector(selector);
  if (!(found instanceof kind)) throw new Error(`The page has no ${kind.name} ${selector}`);
  return found;
}

/** An element with attributes and children; strings become text, never markup. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, AttributeValue> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false || value === null) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

export type MessageKind = 'info' | 'ok' | 'error';

/** The one status line above the map (`#message`, a polite live region). */
export function say(text: string, kind: MessageKind = 'info'): void {
  const message = $('#message');
  message.textContent = text;
  message.dataset.kind = kind;
  message.hidden = false;
}

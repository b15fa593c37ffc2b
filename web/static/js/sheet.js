// Sheet is the one place details appear: a bottom sheet on phones, a side panel on wide screens
// (CSS decides). It shows one thing at a time, named by a key ("alerts", "list", "valve:3"), so
// the page can re-render it with fresh data after a refresh. Escape and the close button close it,
// and focus returns to where it came from.

import { byId, replace } from './dom.js';

export class Sheet {
  constructor({ onClose = () => {} } = {}) {
    this.root = byId('sheet');
    this.titleEl = byId('sheet-title');
    this.body = byId('sheet-body');
    this.onClose = onClose;
    this.key = '';
    this.sig = null;
    this.returnFocus = null;
    // Set by content that must not be replaced under the user's hands (a pending confirmation).
    this.hold = false;
    byId('sheet-close').addEventListener('click', () => this.close());
    this.root.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        this.close();
      }
    });
  }

  get isOpen() { return !this.root.hidden; }

  // render shows build()'s content under title, unless the sheet already shows key with the same
  // signature sig (a digest of the data shown): a refresh that brings nothing new leaves the DOM,
  // and whatever the person is pointing at, alone. It reports whether it rendered.
  render(key, sig, title, build) {
    if (this.isOpen && key === this.key && sig === this.sig) return false;
    this.show(key, title, ...build());
    this.sig = sig;
    return true;
  }

  // show replaces the sheet's content. focus moves to the title when the sheet opens or shows
  // something new, not on a re-render of the same key.
  show(key, title, ...content) {
    this.sig = null;
    const fresh = !this.isOpen || key !== this.key;
    if (!this.isOpen) {
      const active = document.activeElement;
      this.returnFocus = active && active !== document.body && !this.root.contains(active) ? active : null;
    }
    if (fresh) this.hold = false;
    this.key = key;
    this.root.dataset.key = key;
    this.titleEl.textContent = title;
    replace(this.body, ...content);
    this.root.hidden = false;
    if (fresh) this.titleEl.focus({ preventScroll: true });
  }

  // busy reports whether a re-render now would disturb the user: a confirmation is pending or
  // they are typing in a field of the sheet.
  busy() {
    const a = document.activeElement;
    return this.hold || (this.isOpen && this.body.contains(a) && (a.tagName === 'INPUT' || a.tagName === 'SELECT'));
  }

  close() {
    if (!this.isOpen) return;
    this.root.hidden = true;
    this.key = '';
    delete this.root.dataset.key;
    this.hold = false;
    replace(this.body);
    const back = this.returnFocus;
    this.returnFocus = null;
    if (back && document.contains(back)) back.focus({ preventScroll: true });
    this.onClose();
  }
}

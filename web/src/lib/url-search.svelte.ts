/**
 * The text of a search box whose query lives in the URL: typed, sent after a pause, brought back by
 * each load. A load puts its query in the box only when the box did not send it (a reload, the back
 * button, a link): the load of the letters sent first must not take back the letters typed since.
 */
export class UrlSearch {
  text = $state('');
  /** The query of the last load. */
  #loaded = '';
  /** The query this box put in the URL, until its load comes back. */
  #sent: string | null = null;

  /** Called with the query of each load of the page (null for none). */
  loaded(query: string | null | undefined) {
    const q = query ?? '';
    if (q === this.#sent) this.#sent = null;
    else if (q !== this.#loaded) this.text = q;
    this.#loaded = q;
  }

  /** The query to put in the URL now: the text, trimmed. */
  send(): string {
    this.#sent = this.text.trim();
    return this.#sent;
  }
}

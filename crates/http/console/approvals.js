// The technical / economic approval buttons of an activatable resource (instance, offering,
// share): one per flag the caller may set, giving or withdrawing it.

import { post } from './api.js';
import { attempt, h, notify } from './dom.js';

const FLAGS = [['tech', 'technical'], ['eco', 'economic']];

/** Buttons for `item` (with its `missing_activation`), posting to `${path}/activation`. */
export function approvalButtons(ctx, item, path, redraw) {
  return FLAGS.filter(([flag]) => ctx.can(`activation.${flag}`)).map(([flag, label]) => {
    const missing = (item.missing_activation || []).includes(flag);
    return h('button', {
      type: 'button',
      class: missing ? '' : 'secondary',
      'data-action': `${flag}-${missing ? 'set' : 'clear'}`,
      onclick: () => attempt(async () => {
        // Withdrawing stops the resource at once: ask first. Giving needs no confirmation.
        if (!missing && !window.confirm(`Withdraw the ${label} approval? It stops being operational.`)) return;
        await post(`${path}/activation`, { flag, active: missing });
        notify(`${missing ? 'Gave' : 'Withdrew'} the ${label} approval.`);
        await redraw();
      }),
    }, missing ? `Give ${label} approval` : `Withdraw ${label} approval`);
  });
}

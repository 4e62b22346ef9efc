"""Which replaying cursor answers from which recorded call, when several threads run identical queries.

Identical calls are matched in recorded order, but threads need not start their cursors in the
order they did while recording: a thread that reads a whole result may be handed the recorded
cursor of a thread that read two documents and stopped. When a replaying cursor reaches the end
of its recorded documents and the recording was not exhausted, :func:`extend` looks for another
recorded call with the same arguments that read further and whose documents start with the same
ones already served, and takes it over. If another cursor holds that call, the two exchange
(the other cursor gets the shorter recording, which holds every document it was recorded reading).
Documents are never mixed from recordings that disagree, so a cursor is never given data that no
recorded cursor of that query returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:
    from timetracer.session import Session

# The attribute of a Replayer holding, per recorded event (by id), the cursor state using it.
_HOLDERS = "_tt_cursor_holders"


def _docs(event: Dict[str, Any]) -> List[Any]:
    body = event["result"].get("body") or {}
    return body.get("data") or []


def _holders(replayer: Any) -> Dict[int, Any]:
    holders = getattr(replayer, _HOLDERS, None)
    if holders is None:
        holders = {}
        setattr(replayer, _HOLDERS, holders)
    return holders  # type: ignore[no-any-return]


def hold(session: Session, state: Any, served: int = 0) -> None:
    """Note that the cursor ``state`` answers from ``state.event``, having loaded ``served`` documents."""
    replayer = session.replayer
    if replayer is None:
        return
    with replayer.lock:
        state.served = max(state.served, served)
        _holders(replayer)[id(state.event)] = state


def extend(session: Session, state: Any) -> bool:
    """Move ``state`` to an identical recorded call that read further; whether it did.

    Called when the cursor has served every document of its recorded call and that call did not
    reach the end of its result.
    """
    replayer = session.replayer
    held = state.event
    result = held["result"]
    if replayer is None or result.get("exhausted") or result.get("error"):
        return False
    mine = _docs(held)
    served = len(mine)
    with replayer.lock:
        holders = _holders(replayer)
        for other in replayer.same_calls(held):
            if other is held:
                continue
            docs = _docs(other)
            further = len(docs) > served or (len(docs) == served and other["result"].get("exhausted"))
            if not further or docs[:served] != mine:
                continue
            holder = holders.get(id(other))
            if holder is None:
                if replayer.is_used(other):
                    continue  # answered a call that is not a cursor of ours: leave it
                replayer.exchange(held, other)
                holders.pop(id(held), None)
            else:
                holder.event = held
                holders[id(held)] = holder
            state.event = other
            holders[id(other)] = state
            return True
    return False

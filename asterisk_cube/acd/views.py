"""Pure projections of the distributor's live state: what an agent's desk shows
(``contract.AgentView``, ``contract.CallView``) and what the supervisors' panel shows
(``supervision.AcdSnapshot``). No I/O: the call card's static part (contacts, enquiry
categories, campaign name) is read once by ``acd.cards`` and handed in."""

from __future__ import annotations

import datetime as dt

from asterisk_cube.acd import contract as c
from asterisk_cube.acd import supervision as sv
from asterisk_cube.acd.state import AcdState, LiveAgent, LiveCall
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt


def agent_view(
    state: AcdState, agent: LiveAgent, now: dt.datetime, card: c.CallView | None
) -> c.AgentView:
    """The agent's desk: its lines with their queues, the offer, the call card (``card``),
    its lines' missed calls and the pause reasons."""
    agent_id = agent.agent_id
    line_info, priorities = state.line_info, state.line_priorities
    waiting = state.waiting()
    # the routing views waiting_for_agent reads: this agent's and those of agents a waiting
    # call is reserved for (not all agents': 20 desks x 20 views per change, issue #19)
    reserved = (w.reserved_for for w in waiting if w.reserved_for is not None)
    needed = dict.fromkeys((agent_id, *reserved))
    views = [state.agents[i].routing_view() for i in needed if i in state.agents]
    counts = {lw.line_id: lw for lw in rt.waiting_for_agent(waiting, views, agent_id, now)}
    lines = []
    for line_id in sorted(
        agent.permitted,
        key=lambda i: (-priorities.get(i, 0), line_info.get(i, ("",))[0]),
    ):
        did, name, _ = line_info.get(line_id, ("", "", 0))
        lw = counts.get(line_id)
        lines.append(
            c.LineView(
                line_id=line_id,
                did=did,
                name=name,
                priority=priorities.get(line_id, 0),
                chosen=line_id in agent.chosen,
                waiting=lw.count if lw else 0,
                longest_wait_s=(now - lw.oldest_queued_at).total_seconds()
                if lw and lw.oldest_queued_at
                else 0.0,
            )
        )
    offer = None
    offered = state.offer_of(agent_id)
    if offered is not None:
        assert offered.offered_at is not None and offered.offer_expires is not None  # _offer
        did, name, _ = line_info.get(offered.line_id or -1, (offered.did, offered.did, 20))
        offer = c.OfferView(
            call_id=offered.call_id,
            line=name,
            did=did,
            caller=offered.caller,
            kind=offered.kind.value,
            offered_at=offered.offered_at,
            expires_at=offered.offer_expires,
            comment=offered.comment,
        )
    mine = sorted(
        (at, missed_id, line_id, caller)
        for missed_id, (line_id, caller, at) in state.missed.items()
        if line_id in agent.permitted
    )[:50]
    missed = [
        c.MissedCallView(
            missed_id=missed_id,
            line=line_info.get(line_id or -1, ("", "", 0))[1],
            caller=caller,
            missed_at=at,
        )
        for at, missed_id, line_id, caller in mine
    ]
    st = agent.status
    return c.AgentView(
        agent_id=agent.agent_id,
        username=agent.username,
        name=agent.name,
        role=agent.role,
        state=st.state.value,
        since=st.since or now,
        pause_reason=st.pause_reason,
        wrap_up_until=st.wrap_up_until,
        blocked=agent.on_outbound_call or agent.dialer_dialing,
        lines=lines,
        offer=offer,
        call=card,
        missed=missed,
        pause_reasons=list(state.pause_reasons),
        pause_requested=st.pause_requested,
    )


def card_call(state: AcdState, agent: LiveAgent) -> LiveCall | None:
    """The call whose card the agent's desk shows, if it is still the agent's."""
    call = state.call(agent.card_call_id)
    return call if call is not None and call.agent_id == agent.agent_id else None


def call_view(
    call: LiveCall, line_info: dict[int, tuple[str, str, int]], static: tuple
) -> c.CallView:
    """The call card; ``static`` = (contacts, categories, campaign name) from ``acd.cards``."""
    did, name, _ = line_info.get(call.line_id or -1, (call.did, call.did, 20))
    contacts, categories, campaign_name = static
    state = {"connecting": "connecting", "connected": "connected"}.get(call.phase, "ended")
    return c.CallView(
        call_id=call.call_id,
        state=state,
        line=name,
        did=did,
        caller=call.caller,
        kind=call.mode or call.kind.value,
        campaign=campaign_name,
        client_id=call.client_id,
        contacts=contacts,
        contact_id=call.contact_id,
        categories=categories,
        registration_required=call.forced_registration,
        registered=call.registered,
        answered_at=call.answered_at,
        comment=call.comment,
        hours=call.hours,
        forward=call.forward.view() if call.forward else None,
        notes=call.notes,
    )


def panel_snapshot(state: AcdState, now: dt.datetime) -> sv.AcdSnapshot:
    """Agents, lines and calls for the supervisors' panel, from memory (no DB)."""
    waiting = {lw.line_id: lw for lw in rt.waiting_by_line(state.waiting())}
    agents = []
    staffed: dict[int, int] = {}
    ready: dict[int, int] = {}
    for a in sorted(state.agents.values(), key=lambda a: (a.name.lower(), a.agent_id)):
        st = a.status
        if st.state != ag.AgentState.LOGGED_OUT:
            for line_id in a.chosen:
                staffed[line_id] = staffed.get(line_id, 0) + 1
                if st.state == ag.AgentState.READY:
                    ready[line_id] = ready.get(line_id, 0) + 1
        current = next(
            (
                call.call_id
                for call in state.calls.values()
                if call.agent_id == a.agent_id and call.phase != "ended"
            ),
            a.card_call_id,
        )
        agents.append(
            sv.AgentRow(
                agent_id=a.agent_id,
                username=a.username,
                name=a.name,
                role=a.role,
                endpoint=a.endpoint,
                state=st.state.value,
                since=st.since,
                pause_reason=st.pause_reason,
                pause_requested=st.pause_requested,
                wrap_up_until=st.wrap_up_until,
                chosen=tuple(sorted(a.chosen)),
                permitted=tuple(sorted(a.permitted)),
                blocked=a.on_outbound_call or a.dialer_dialing,
                call_id=current,
            )
        )
    lines = []
    for line_id, (did, name, _timeout) in sorted(state.line_info.items()):
        lw = waiting.get(line_id)
        lines.append(
            sv.LineRow(
                line_id=line_id,
                did=did,
                name=name,
                priority=state.line_priorities.get(line_id, 0),
                waiting=lw.count if lw else 0,
                oldest_queued_at=lw.oldest_queued_at if lw else None,
                staffed=staffed.get(line_id, 0),
                ready=ready.get(line_id, 0),
            )
        )
    calls = tuple(
        sv.CallRow(
            call_id=call.call_id,
            direction="outbound" if call.mode else "inbound",
            kind=call.mode or call.kind.value,
            phase=call.phase,
            line_id=call.line_id,
            campaign_id=call.campaign_id,
            caller=call.caller,
            did=call.did,
            queued_at=call.queued_at,
            offered_at=call.offered_at if call.phase == "offered" else None,
            answered_at=call.answered_at,
            agent_id=call.agent_id,
            channel_id=call.channel_id,
        )
        for call in sorted(state.calls.values(), key=lambda x: (x.queued_at, x.call_id))
        if call.phase != "ended"
    )
    return sv.AcdSnapshot(at=now, agents=tuple(agents), lines=tuple(lines), calls=calls)

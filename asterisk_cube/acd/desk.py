"""The agent desk's commands (``contract.AgentDesk``) and the supervisors'
(``supervision.Supervision``): each checks who asks and what it may touch, runs the
agent state machine (``core.agents`` through ``Distributor._apply``) and hands telephony
to the engine. The
views themselves are pure (``acd.views``); contacts are searched off the loop
(``acd.contacts``). A mixin of ``Distributor``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select

from asterisk_cube.acd import contacts, node_scope, views
from asterisk_cube.acd import contract as c
from asterisk_cube.acd import records as rec
from asterisk_cube.acd import supervision as sv
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.state import (
    CALLBACK_MODE,
    LOGIN_PAUSE,
    LiveAgent,
    LiveCall,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core.numbers import (
    DEFAULT_REGION,
    InvalidNumber,
    check_typed,
    normalize,
)
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class DeskCommands(DistributorCore):
    # -------------------------------------------------------- AgentDesk API

    async def login(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.status.state == ag.AgentState.LOGGED_OUT:
            self._log_in(agent, ag.Login(paused=LOGIN_PAUSE))
            self._after_agent_change(agent)

    def _log_in(self, agent: LiveAgent, event: ag.Login) -> None:
        """Claim the agent for this node (``node_scope.claim_agent``: refused while it is
        logged in on another live node), then log it in (issue #14)."""
        now = self.now()
        state = ag.transition(agent.status, event, now).status.state
        with self._tx() as s:
            node_scope.claim_agent(s, agent.agent_id, self.node, m.AgentState(state.value), now)
        self._apply(agent, event)

    async def logout(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.status.state == ag.AgentState.LOGGED_OUT:
            return
        self._apply(agent, ag.Logout())
        self._set_card(agent, None)
        self._after_agent_change(agent)

    async def choose_lines(self, agent_id: int, line_ids: list[int]) -> None:
        agent = self._agent(agent_id)
        wanted = frozenset(int(i) for i in line_ids)
        extra = wanted - agent.permitted
        if extra:
            raise c.Refused(c.NOT_PERMITTED, f"not permitted to serve line {min(extra)}")
        with self._tx() as s:
            for link in s.scalars(select(m.AgentLine).where(m.AgentLine.agent_id == agent_id)):
                link.chosen = link.line_id in wanted
        agent.chosen = wanted
        self._after_agent_change(agent)

    async def ready(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if agent.status.state == ag.AgentState.LOGGED_OUT:
            self._log_in(agent, ag.Login())
        elif agent.status.state == ag.AgentState.WRAP_UP and self._registration_missing(agent):
            raise c.Refused(
                c.REGISTRATION_REQUIRED, "register the enquiry before taking the next call"
            )
        else:
            self._apply(agent, ag.MakeReady())
        self._after_agent_change(agent)

    async def pause(self, agent_id: int, reason: str) -> None:
        agent = self._agent(agent_id)
        with self._read() as s:
            known = s.get(m.PauseReason, reason) if reason and len(reason) <= 32 else None
        if known is None or known.system:
            raise c.Refused(c.INVALID, "reason: choose one of the listed pause reasons")
        self._apply(agent, ag.Pause(reason=reason))
        self._after_agent_change(agent)

    async def cancel_pause(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        self._apply(agent, ag.CancelPauseRequest())
        self.notifier.agents(agent_id)

    def _my_call(self, agent: LiveAgent, call_id: int, phases: Iterable[str]) -> LiveCall:
        call = self.calls.get(call_id)
        if call is None or call.agent_id != agent.agent_id or call.phase not in phases:
            raise c.Refused(c.NOT_FOUND, f"call {call_id} is not yours")
        return call

    async def accept(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._my_call(agent, call_id, ("offered",))
        self._end_offer(call, m.OfferResult.ACCEPTED)
        self._apply(agent, ag.Accept())
        self._write(rec.update_call, call_id, agent_id=agent_id)
        call.phase = "connecting"
        call.registered = False
        self._set_card(agent, call_id)
        log.debug("offer_accepted", call=call_id, agent=agent.username)
        # Ring the phone first, then update screens: the connect task's first step
        # (the originate) is queued before the desktop pushes this notify wakes.
        self._spawn(self._connect(call, agent), f"connect-{call_id}")
        self.notifier.queue(call.line_id, agent_id)  # it left the line's queue

    async def decline(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._my_call(agent, call_id, ("offered",))
        self._end_offer(call, m.OfferResult.DECLINED)
        self._back_to_queue(call, lapsed_by=agent_id, now=self.now())
        self._apply(agent, ag.Decline())
        self._after_agent_change(agent)

    async def hangup(self, agent_id: int, call_id: int) -> None:
        """The desk's Hang up: the call ends and every leg goes, the agent's phone too."""
        agent = self._agent(agent_id)
        call = self._my_call(agent, call_id, ("connected", "connecting"))
        if call.phase == "connected":
            self.agent_leg_left(call.call_id)
        elif call.mode == CALLBACK_MODE or call.dialer_owned:
            # still ringing, or answered and being bridged (the agent's phone already says
            # "In call"): every leg rung for it goes, and nothing more is rung; the dialer's
            # flow (or the callback's) sees its legs go and ends the call
            call.lost_leg = True
            self._release(call)
        else:
            raise c.Refused(c.ILLEGAL_STATE, "the call is not connected yet")

    async def finish_wrap_up(self, agent_id: int) -> None:
        agent = self._agent(agent_id)
        if self._registration_missing(agent):
            raise c.Refused(
                c.REGISTRATION_REQUIRED, "register the enquiry before taking the next call"
            )
        self._apply(agent, ag.FinishWrapUp())  # refused unless in wrap-up
        self._after_agent_change(agent)

    async def extend_wrap_up(self, agent_id: int, seconds: int) -> None:
        agent = self._agent(agent_id)
        if not isinstance(seconds, int) or not 1 <= seconds <= 3600:
            raise c.Refused(c.INVALID, "seconds: a whole number from 1 to 3600")
        self._apply(agent, ag.ExtendWrapUp(by=dt.timedelta(seconds=seconds)))
        self.notifier.agents(agent_id)

    def _card_call(self, agent: LiveAgent, call_id: int) -> LiveCall:
        call = self.calls.get(call_id)
        if call is None or agent.card_call_id != call_id or call.agent_id != agent.agent_id:
            raise c.Refused(c.NOT_FOUND, f"call {call_id} is not yours")
        return call

    async def register_enquiry(
        self, agent_id: int, call_id: int, topic_ids: list[int], comment: str
    ) -> None:
        agent = self._agent(agent_id)
        call = self._card_call(agent, call_id)
        if not topic_ids:
            raise c.Refused(c.INVALID, "topic_ids: choose at least one topic")
        if len(comment) > 4000:
            raise c.Refused(c.INVALID, "comment: at most 4000 characters")
        with self._tx() as s:
            categories = contacts.categories(s, call.campaign_id)
            topic_owner = {t.id: cat for cat in categories for t in cat.topics}
            unknown = [t for t in topic_ids if t not in topic_owner]
            if unknown:
                raise c.Refused(
                    c.INVALID, f"topic_ids: topic {unknown[0]} is not offered on this call"
                )
            per_cat: dict[int, int] = {}
            for t in topic_ids:
                per_cat[topic_owner[t].id] = per_cat.get(topic_owner[t].id, 0) + 1
            for cat in categories:
                if not cat.multi_choice and per_cat.get(cat.id, 0) > 1:
                    raise c.Refused(c.INVALID, f"topic_ids: {cat.name} takes one choice")
            enquiry = m.Enquiry(
                call_id=call_id,
                agent_id=agent_id,
                line_id=call.line_id,
                campaign_id=call.campaign_id,
                contact_id=call.contact_id,
                comment=comment,
                created_at=self.now(),
            )
            s.add(enquiry)
            s.flush()
            for t in dict.fromkeys(topic_ids):
                s.add(m.EnquirySelection(enquiry_id=enquiry.id, topic_id=t))
            s.get_one(m.Call, call_id).registration_done = True
        call.registered = True
        self._enquiry_registered(call, agent_id, topic_ids, comment)
        self.notifier.agents(agent_id)
        until = agent.status.wrap_up_until
        if (
            agent.status.state == ag.AgentState.WRAP_UP
            and until is not None
            and until <= self.now()
        ):
            self._wrap_up_expired(agent_id)

    async def close_call(self, agent_id: int, call_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._card_call(agent, call_id)
        if call.phase != "ended":
            raise c.Refused(c.ILLEGAL_STATE, "the call is still going on")
        if call.forced_registration and not call.registered:
            raise c.Refused(c.REGISTRATION_REQUIRED, "register the enquiry before closing the call")
        self._set_card(agent, None)
        self.calls.pop(call_id, None)
        self.notifier.agents(agent_id)

    async def search_contacts(self, agent_id: int, query: str) -> list[c.ContactView]:
        """Contacts by name, company or number, among those the agent may see
        (``acd.contact_scope``)."""
        agent = self._agent(agent_id)
        text = query.strip()
        if len(text) < 2:
            raise c.Refused(c.INVALID, "q: type at least 2 characters")
        return await self.contacts.search(agent_id, agent.permitted, text)

    async def attach_contact(self, agent_id: int, call_id: int, contact_id: int) -> None:
        agent = self._agent(agent_id)
        call = self._card_call(agent, call_id)
        await self.contacts.attach(agent_id, agent.permitted, call_id, call.caller, contact_id)
        call.contact_id = contact_id
        call.card_static = None
        self.notifier.agents(agent_id)

    async def create_contact(
        self, agent_id: int, call_id: int, name: str, phone: str, company: str, email: str
    ) -> c.ContactView:
        agent = self._agent(agent_id)
        call = self._card_call(agent, call_id)
        if phone:
            try:  # a typed number with letters is a typo, not a number with the letters stripped
                number = normalize(check_typed(phone), DEFAULT_REGION)
            except InvalidNumber:
                number = None
        else:
            number = normalize(call.caller, DEFAULT_REGION)
        if not number:
            raise c.Refused(c.INVALID, "phone: not a phone number")
        if not name.strip():
            raise c.Refused(c.INVALID, "name: required")
        if email and "@" not in email:
            raise c.Refused(c.INVALID, "email: not an e-mail address")
        view = await self.contacts.create(
            agent_id, call_id, call.campaign_id, number, name, company, email
        )
        call.contact_id = view.contact_id
        call.card_static = None
        self.notifier.agents(agent_id)
        return view

    # ------------------------------------------------------------ the view

    async def view(self, agent_id: int) -> c.AgentView:
        agent = self._agent(agent_id)
        if not agent.permitted <= self.line_info.keys():
            self.refresh_lines()  # a line added since we loaded
        call = views.card_call(self.state, agent)
        card = self._call_view(call) if call is not None else None
        return views.agent_view(self.state, agent, self.now(), card)

    def _card_static(self, call: LiveCall) -> tuple:
        """The parts of the call card that do not change during the call, read once."""
        if call.card_static is None:
            # A hotline's new contact shows up when it is written (_contact_created).
            call.card_static = contacts.card_static(
                self.sessions, call.caller, call.campaign_id, self.contacts.card_config
            )
        return call.card_static

    def _call_view(self, call: LiveCall) -> c.CallView:
        return views.call_view(call, self.line_info, self._card_static(call))

    # ------------------------------------------------------------ supervision (F-M1)

    def panel_snapshot(self) -> sv.AcdSnapshot:
        """Agents, lines and calls for the supervisors' panel, from memory (no DB)."""
        return views.panel_snapshot(self.state, self.now())

    async def force_pause(self, agent_id: int, reason: str = "supervisor") -> None:
        """A supervisor pauses an agent (panel): any known pause reason, the system one
        "supervisor" too. While busy or in wrap-up it takes effect after the call."""
        agent = self._agent(agent_id)
        with self._read() as s:
            known = s.get(m.PauseReason, reason) if reason and len(reason) <= 32 else None
        if known is None:
            raise c.Refused(c.INVALID, "reason: not a known pause reason")
        self._apply(agent, ag.Pause(reason=reason))
        self._after_agent_change(agent)

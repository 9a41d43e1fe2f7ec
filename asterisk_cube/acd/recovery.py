"""Rebuilding the in-flight state after a restart or an ARI reconnect (``recover``): from the
database and the channels Asterisk still holds in the app. Waiting calls keep their order;
calls whose caller is gone become missed or ended; offers and connections that did not
survive are undone. A mixin of ``Distributor``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from asterisk_cube.acd import node_scope
from asterisk_cube.acd.base import DistributorCore
from asterisk_cube.acd.state import (
    DB_TO_KIND,
    LiveCall,
)
from asterisk_cube.core import agents as ag
from asterisk_cube.core import routing as rt
from asterisk_cube.db import models as m
from asterisk_cube.logs import get_logger

log = get_logger(__name__)


class Recovery(DistributorCore):
    # ------------------------------------------------------------- recovery

    def recover(self, live_channels: set[str]) -> dict[str, int]:
        """Rebuild in-flight state after a restart from the DB and the channels
        Asterisk still holds in the app. Waiting calls keep their order
        (``queued_at``); calls whose caller is gone become missed / ended."""
        if not self._loaded:
            self.load()
        self.forget_lost_calls(live_channels)
        now = self.now()
        stats = {"waiting": 0, "connected": 0, "missed": 0, "ended": 0}
        with self._tx() as s:
            rows = s.scalars(
                select(m.Call)
                .where(
                    m.Call.direction == m.Direction.INBOUND,
                    m.Call.state.in_(
                        (m.CallState.WAITING, m.CallState.OFFERED, m.CallState.CONNECTED)
                    ),
                    or_(m.Call.node == self.node, m.Call.node.is_(None)),
                )
                .order_by(m.Call.queued_at)
            ).all()
            for row in rows:
                alive = row.channel_id in live_channels
                if row.id in self.calls:
                    continue
                if row.state in (m.CallState.WAITING, m.CallState.OFFERED):
                    for offer in s.scalars(
                        select(m.CallOffer).where(
                            m.CallOffer.call_id == row.id,
                            m.CallOffer.result == m.OfferResult.PENDING,
                        )
                    ):
                        offer.result = m.OfferResult.WITHDRAWN
                        offer.decided_at = now
                    if alive:
                        row.state = m.CallState.WAITING
                        self._restore_call(s, row, "waiting")
                        stats["waiting"] += 1
                    else:
                        row.state = m.CallState.MISSED
                        row.ended_at = now
                        row.end_reason = "lost_during_restart"
                        self._record_missed(row.id, row.line_id, row.caller_number, now)
                        stats["missed"] += 1
                elif alive and row.agent_id in self.agents:
                    call = self._restore_call(s, row, "connected")
                    call.agent_id = row.agent_id
                    call.agent_channel = s.scalar(
                        select(m.CallLeg.channel_id).where(
                            m.CallLeg.call_id == row.id, m.CallLeg.role == m.LegRole.AGENT
                        )
                    )
                    call.answered_at = row.answered_at
                    self.agents[row.agent_id].card_call_id = row.id
                    stats["connected"] += 1
                else:
                    row.state = m.CallState.ENDED
                    row.ended_at = now
                    row.end_reason = "ended_during_restart"
                    stats["ended"] += 1
            # Agents: an offer or a connection in flight did not survive the restart.
            for agent in node_scope.own_agents(s, self.node, self.agents):
                st = agent.status.state
                has_live_call = self.state.has_connected_call(agent.agent_id)
                if st == ag.AgentState.OFFERED:
                    self._apply(agent, ag.OfferWithdrawn(), s)
                elif st == ag.AgentState.BUSY and not has_live_call and not agent.on_outbound_call:
                    self._set_card(agent, None)
                    self._apply(agent, ag.CallEnded(wrap_up=dt.timedelta(0)), s)
                elif st == ag.AgentState.WRAP_UP:
                    self._set_card(agent, None)
                    self._arm_wrap_timer(agent)
        log.info("acd_recovered", **stats)
        self.notifier.everyone()
        self.dispatch()
        return stats

    def _restore_call(self, s: Session, row: m.Call, phase: str) -> LiveCall:
        campaign = s.get(m.Campaign, row.campaign_id) if row.campaign_id else None
        contact = s.get(m.Contact, row.contact_id) if row.contact_id else None
        kind = DB_TO_KIND.get(row.kind, rt.CallType.SERVICE)
        assert row.channel_id is not None  # restored only while its channel is alive
        call = LiveCall(
            call_id=row.id,
            channel_id=row.channel_id,
            kind=kind,
            line_id=row.line_id,
            caller=row.caller_number,
            did=row.dialed_number,
            queued_at=row.queued_at or row.started_at,
            campaign_id=row.campaign_id,
            client_id=row.client_id,
            contact_id=row.contact_id,
            skill=campaign.skill.name if campaign and campaign.skill else None,
            last_agent_id=contact.last_agent_id
            if contact and kind == rt.CallType.CUSTOMER_CALLBACK
            else None,
            forced_registration=bool(campaign and campaign.forced_registration),
            wrap_up_seconds=campaign.wrap_up_seconds if campaign else None,
            registered=row.registration_done,
            phase=phase,
        )
        self.calls[call.call_id] = call
        self.by_channel[call.channel_id] = call.call_id
        return call

    def forget_lost_calls(self, live_channels: set[str]) -> None:
        """After a reconnect: calls whose caller channel Asterisk no longer has are over."""
        for channel_id in [ch for ch in self.by_channel if ch not in live_channels]:
            self.caller_left(channel_id, cause="lost")

"""A local JumpCloud (v1, v2, Directory Insights) for the demo, integration tests and benchmarks.

    from jumpcloud.simulator import Simulator, SimulatorConfig, FaultConfig

    with Simulator(SimulatorConfig(seed=1, users=200)).start() as sim:
        requests.get(sim.base_url + "/api/systemusers", headers={"x-api-key": sim.keys["admin"]})

Pure standard library at run time; see docs/simulator.md.
"""

from jumpcloud.simulator.config import FaultConfig, SimulatorConfig
from jumpcloud.simulator.core import KEY_ROLES, ORGS, RequestRecord, Simulator
from jumpcloud.simulator.tenant import Tenant

__all__ = ["KEY_ROLES", "ORGS", "FaultConfig", "RequestRecord", "Simulator", "SimulatorConfig", "Tenant"]

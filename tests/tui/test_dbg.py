import asyncio
from tests.tui.conftest import VIEW, batch_dir, in_trio, run_app
from tests.tui.test_live import rpc
from protos.cofi.v1 import cofi_pb2 as pb
from tui.client import CofiClient

async def test_dbg(daemon, tmp_path):
    d = batch_dir(tmp_path, 3)
    async def scenario():
        c = CofiClient(daemon.target, VIEW)
        got = []
        async def reader():
            async for item in c.watch(0, None, event_types=("stage_start", "error", "info"), idle_timeout=5):
                got.append(item)
        task = asyncio.create_task(reader())
        await asyncio.sleep(0.5)
        await in_trio(daemon, lambda: rpc(daemon, "StartBatch", pb.StartBatchRequest(directory=str(d))))
        await asyncio.sleep(3)
        task.cancel()
        print(task)
        return got
    got = await run_app(scenario)
    for g in got: print(g)
    assert 0

"""A minimal ASGI app for the multi-worker test: each request starts one asyncio task that sleeps."""
import asyncio
import os

TASKS = set()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
    TASKS.add(task)
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})

"""Downloading a video given by URL into the job's folder, reaching only addresses the policy permits.

The service fetches the video itself, before the job is acknowledged, instead of handing the URL
to FFmpeg, which would resolve the host again and follow redirects wherever they lead. Here each
hop's host is resolved and every address checked (:mod:`service.addresses`), the connection goes
to a checked address (the Host header and the TLS server name stay the URL's, so virtual hosts and
certificates work), redirects are followed by hand and re-checked, the body is bounded by the
upload limit and the whole download by a deadline. The job then reads a local file, like an upload.
"""

import asyncio
from pathlib import Path

import httpx
from fastapi.concurrency import run_in_threadpool

from service.addresses import AddressPolicy, UrlNotAllowedError, checked_addresses
from service.errors import PayloadTooLargeError, UnprocessableError, describe

MAX_REDIRECTS = 5
TIMEOUT_S = 10.0  # to connect, and between two reads
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_SCHEMES = ("http", "https")
_CHUNK = 1 << 16


def _unreachable(message: str) -> UnprocessableError:
    return UnprocessableError(message, code="source_unreachable")


async def _open(client: httpx.AsyncClient, url: httpx.URL, policy: AddressPolicy, shown: str) -> httpx.Response:
    """The response of the last hop, its body not read yet."""
    for _ in range(MAX_REDIRECTS + 1):
        if url.scheme not in _SCHEMES:
            raise UrlNotAllowedError(f"{shown} redirects to a {url.scheme} URL; only http(s) is followed")
        host = url.raw_host.decode("ascii")
        addresses = await run_in_threadpool(checked_addresses, host, policy, shown)
        request = client.build_request(
            "GET",
            url.copy_with(host=str(addresses[0])),
            headers={"Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity"},
            extensions={"sni_hostname": host},
        )
        response = await client.send(request, stream=True)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUSES or not location:
            return response
        await response.aclose()
        url = url.join(location)
    raise _unreachable(f"{shown} redirects more than {MAX_REDIRECTS} times")


async def _save(response: httpx.Response, path: Path, max_bytes: int, shown: str) -> None:
    if not response.is_success:
        raise _unreachable(f"{shown} answered HTTP {response.status_code}")
    too_large = PayloadTooLargeError(f"the video at {shown} is larger than {max_bytes / 1e6:g} MB")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    size = 0
    with path.open("wb") as out:
        async for chunk in response.aiter_raw(_CHUNK):  # raw: a compressed body is never inflated here
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            out.write(chunk)


async def fetch_url(url: str, path: Path, policy: AddressPolicy, max_bytes: int, deadline_s: float, shown: str) -> None:
    """Download ``url`` to ``path``; 422 ``url_not_allowed`` / ``source_unreachable``, 413 when too large.

    ``shown`` names the URL in messages (its password redacted); no message carries an errno.
    """
    try:
        async with asyncio.timeout(deadline_s), httpx.AsyncClient(trust_env=False, timeout=TIMEOUT_S) as client:
            response = await _open(client, httpx.URL(url), policy, shown)
            try:
                await _save(response, path, max_bytes, shown)
            finally:
                await response.aclose()
    except TimeoutError:
        raise _unreachable(f"downloading {shown} took more than {deadline_s:g} s") from None
    except httpx.TimeoutException:
        raise _unreachable(f"{shown} did not answer within {TIMEOUT_S:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _unreachable(f"{shown} cannot be fetched: {describe(error)}") from None

"""OpenAI-shaped image routes: /v1/images/generations, /v1/images/edits, /v1/files/{name}.

Every image is written with its parameters in the PNG text (``Controller.save_image``) under
``<output_dir>/api/``; ``b64_json`` returns those very PNG bytes, ``url`` returns a link to
``GET /v1/files/<name>.png`` on this server. A link, not a data URL: it stays short in the
JSON, any HTTP client can fetch it, and the file stays on disk with the rest of the
outputs. The link needs the API key like every /v1 route (OpenAI's links are pre-signed;
ours are not), so with a key set, fetch it with the same ``Authorization`` header.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from common.text import TextInputError, clean_text
from frontends.api_errors import ApiError, error_responses
from frontends.api_jobs import run_blocking
from frontends.api_limits import ApiLimits
from frontends.api_links import public_url_for
from frontends.api_schemas import (
    MAX_IMAGES,
    ImageData,
    ImageFormat,
    ImageGenerationRequest,
    ImagesResponse,
)
from pipelines.errors import ImageError
from pipelines.image_engine import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MIN_SIDE,
    ImageRequest,
    check_request,
)
from pipelines.image_input import MAX_UPLOAD_PIXELS, open_upload

logger = logging.getLogger(__name__)

SIZE_PATTERN = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
FILE_NAME_PATTERN = r"^[0-9a-f]{32}\.png$"


def openai_mask(mask: Any) -> Any:
    """OpenAI's mask convention (fully transparent = edit here) as the engine's (white = repaint).

    A mask with no alpha channel is read as white = repaint.
    """
    from PIL import ImageOps

    if mask.mode in ("RGBA", "LA"):
        return ImageOps.invert(mask.getchannel("A"))
    return mask.convert("L")


@dataclass
class Drawn:
    """One finished image: where it was written and the parameters that made it."""

    path: Path
    params: dict[str, Any]


def parse_size(size: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """``"512x768"`` -> (512, 768); None or ``"auto"`` -> ``default``.

    The engine checks the range and the multiple of 8 and says what to use instead.
    """
    if size is None or size.strip().lower() in ("", "auto"):
        return default
    match = SIZE_PATTERN.match(size)
    if not match:
        raise ApiError(
            "input-invalid",
            f"`size` must look like 512x512 (WIDTHxHEIGHT in pixels), not {size!r}.",
            param="size",
        )
    return int(match.group(1)), int(match.group(2))


def size_for_upload(width: int, height: int) -> tuple[int, int]:
    """The output size for an edit that names none: the upload's, fitted to the engine's range.

    Scaled down (aspect kept) to fit ``MAX_SIDE``, rounded down to multiples of 8, at least
    ``MIN_SIDE`` per side.
    """
    scale = min(1.0, MAX_SIDE / max(width, height))
    return tuple(max(MIN_SIDE, int(side * scale) // 8 * 8) for side in (width, height))


def decode_image(data: bytes, field: str, max_pixels: int = MAX_UPLOAD_PIXELS):
    """Open uploaded image bytes as a fully loaded PIL image.

    Raises ``image-too-large`` above ``max_pixels`` (before decoding), else ``input-invalid``
    for anything that is not a readable PNG, JPEG, WebP, GIF or BMP.
    """
    try:
        return open_upload(data, field, max_pixels)
    except ImageError as e:
        raise ApiError(e.code, e.message, param=field) from e


def clean_field(text: str | None, field: str) -> str | None:
    """``text`` without control characters; a NUL is ``input-invalid`` naming ``field``."""
    if text is None:
        return None
    try:
        return clean_text(text, field)
    except TextInputError as e:
        raise ApiError(e.code, e.message, param=field) from e


def check_cost(
    limits: ApiLimits,
    width: int,
    height: int,
    steps: int | None,
    n: int,
    default_steps: int | None,
) -> None:
    """Refuse a bad size or step count (``input-invalid``) or one over budget, before queueing.

    ``default_steps``: the model's own (``ControllerInfo.default_steps``), for ``steps=None``.
    """
    steps = steps if steps is not None else default_steps
    try:
        check_request(ImageRequest(prompt="-", width=width, height=height, steps=steps))
    except ImageError as e:
        raise ApiError(e.code, e.message) from e
    limits.budget.check(width, height, steps, n)


class ImageService:
    """Draws for the image routes through the controller's verbs (draw, edit, rewrite,
    save_image, describe)."""

    def __init__(self, controller: Any):
        self.controller = controller
        self.files_dir = Path(controller.output_dir) / "api"
        self.files_dir.mkdir(parents=True, exist_ok=True)

    @property
    def model(self) -> str:
        return self.controller.describe().image_model

    @property
    def placeholder(self) -> bool:
        return self.controller.describe().placeholder

    def prompts(self, prompt: str, negative: str | None, raw: bool) -> tuple[str, str, str]:
        """(prompt, negative prompt, who wrote it) for the engine, from the caller's words."""
        prompt = clean_field(prompt, "prompt")
        negative = clean_field(negative, "negative_prompt")
        if not prompt.strip():
            raise ApiError(
                "input-invalid",
                "`prompt` is empty: describe the picture, e.g. 'a red fox in the snow'.",
                param="prompt",
            )
        if raw:
            return prompt.strip(), negative or "", "raw"
        rewrite = self.controller.rewrite(prompt)
        negative = rewrite.negative_prompt if negative is None else negative
        return rewrite.prompt, negative, rewrite.rewriter

    def draw(
        self,
        requests: list[ImageRequest],
        init_image: Any,
        cancel: threading.Event,
        request_text: str,
        mask: Any = None,
    ) -> list[Drawn]:
        """Run each request (img2img from ``init_image``, inpaint with ``mask``) and save it."""
        drawn = []
        for image_request in requests:  # the controller's verbs: draw, edit
            if init_image is None:
                [result] = self.controller.draw(image_request, cancel=cancel)
            else:
                result = self.controller.edit(image_request, init_image, mask, cancel=cancel)
            path = self.files_dir / f"{uuid.uuid4().hex}.png"
            params = self.controller.save_image(result, path, request=request_text)
            drawn.append(Drawn(path, params))
        return drawn

    def respond(
        self,
        request: Request,
        drawn: list[Drawn],
        response_format: ImageFormat,
        notice: str | None = None,
    ) -> ImagesResponse:
        data = []
        for item in drawn:
            entry = ImageData(revised_prompt=item.params["prompt"], seed=item.params["seed"])
            if response_format == "url":
                entry.url = public_url_for(request, "get_file", name=item.path.name)
            else:
                entry.b64_json = base64.b64encode(item.path.read_bytes()).decode("ascii")
            data.append(entry)
        first = drawn[0].params
        return ImagesResponse(
            created=int(time.time()),
            data=data,
            size=f"{first['width']}x{first['height']}",
            model=self.model,
            placeholder=self.placeholder,
            notice=notice,
        )


def seeds_for(seed: int | None, n: int) -> list[int]:
    """Image i gets ``seed + i``; no seed (or -1) draws a random seed for each."""
    if seed is None or seed == -1:
        return [-1] * n
    return [(seed + i) % (MAX_SEED + 1) for i in range(n)]


def images_router(controller: Any, limits: ApiLimits) -> APIRouter:
    """The /v1/images and /v1/files routes, bound to ``controller``, within ``limits``."""
    service = ImageService(controller)
    defaults = controller.defaults
    router = APIRouter(tags=["images"])

    @router.post(
        "/v1/images/generations",
        response_model=ImagesResponse,
        summary="Create images from a prompt (OpenAI images.generate)",
        responses=error_responses(400, 401, 409, 413, 429, 500, 503),
    )
    async def create_images(body: ImageGenerationRequest, request: Request) -> ImagesResponse:
        """Text-to-image. The prompt goes through the rewriter unless `raw` is true; the
        prompt actually used comes back as `revised_prompt`, with each image's `seed`.
        A request costing more than the server's budget (`budget-exceeded`) or arriving
        when its queue is full (429 `server-busy`, with `Retry-After`) is refused at once."""
        width, height = parse_size(body.size, (defaults.width, defaults.height))
        steps = body.steps if body.steps is not None else defaults.steps
        check_cost(limits, width, height, steps, body.n, controller.describe().default_steps)
        service.prompts(body.prompt, body.negative_prompt, raw=True)  # bad text: refused now

        def job(cancel: threading.Event) -> list[Drawn]:
            prompt, negative, _ = service.prompts(body.prompt, body.negative_prompt, body.raw)
            requests = [
                ImageRequest(
                    prompt=prompt,
                    negative_prompt=negative,
                    seed=seed,
                    steps=steps,
                    guidance=body.guidance if body.guidance is not None else defaults.guidance,
                    width=width,
                    height=height,
                )
                for seed in seeds_for(body.seed, body.n)
            ]
            return service.draw(requests, None, cancel, body.prompt)

        drawn = await run_blocking(request, job, limits.queue("image"))
        return service.respond(request, drawn, body.response_format)

    @router.post(
        "/v1/images/edits",
        response_model=ImagesResponse,
        summary="Redraw an uploaded image from a prompt (OpenAI images.edit)",
        responses=error_responses(400, 401, 409, 413, 429, 500, 503),
    )
    async def edit_images(
        request: Request,
        response: Response,
        prompt: Annotated[
            str, Form(max_length=MAX_PROMPT_CHARS, description="What the picture should become.")
        ],
        image: Annotated[
            UploadFile | None, File(description="The picture to start from (PNG, JPEG, WebP).")
        ] = None,
        image_list: Annotated[
            list[UploadFile] | None,
            File(alias="image[]", description="OpenAI's array form; exactly one image."),
        ] = None,
        mask: Annotated[
            UploadFile | None,
            File(
                description="Same size as the image; fully transparent pixels are repainted "
                "(OpenAI's convention); without alpha, white is repainted."
            ),
        ] = None,
        n: Annotated[int, Form(ge=1, le=MAX_IMAGES)] = 1,
        size: Annotated[
            str | None,
            Form(description="WIDTHxHEIGHT; default: the upload's size, fitted to 64..2048."),
        ] = None,
        response_format: Annotated[ImageFormat, Form()] = "b64_json",
        model: Annotated[str | None, Form(description="Accepted and ignored.")] = None,
        negative_prompt: Annotated[str | None, Form(max_length=MAX_PROMPT_CHARS)] = None,
        seed: Annotated[int | None, Form(ge=-1, le=MAX_SEED)] = None,
        steps: Annotated[int | None, Form(ge=1)] = None,
        guidance: Annotated[float | None, Form(ge=0.0)] = None,
        strength: Annotated[
            float | None,
            Form(gt=0.0, le=1.0, description="How much changes, default image.edit_strength."),
        ] = None,
        raw: Annotated[bool, Form()] = False,
    ) -> ImagesResponse:
        """Image-to-image from the uploaded picture (the whole picture is redrawn with
        `strength`), or inpainting when a mask is sent: only its transparent area is
        repainted and the rest of the picture is kept exactly."""
        uploads = [u for u in [image, *(image_list or [])] if u is not None]
        if len(uploads) != 1:
            raise ApiError(
                "input-invalid",
                f"Send exactly one `image` to edit (got {len(uploads)}).",
                param="image",
            )
        image_bytes = await uploads[0].read()
        mask_bytes = await mask.read() if mask is not None else None
        service.prompts(prompt, negative_prompt, raw=True)  # bad text: refused now
        # Decoded before queueing (within the pixel limit), so the cost is known up front.
        init = await run_in_threadpool(decode_image, image_bytes, "image", limits.max_image_pixels)
        mask_image = None
        if mask_bytes is not None:
            mask_image = await run_in_threadpool(
                decode_image, mask_bytes, "mask", limits.max_image_pixels
            )
            if mask_image.size != init.size:
                raise ApiError(
                    "input-invalid",
                    f"The mask is {mask_image.width}x"
                    f"{mask_image.height} but the image is {init.width}x"
                    f"{init.height}; they must match.",
                    param="mask",
                )
        width, height = parse_size(size, size_for_upload(*init.size))
        edit_steps = steps if steps is not None else defaults.steps
        check_cost(limits, width, height, edit_steps, n, controller.describe().default_steps)

        def job(cancel: threading.Event) -> list[Drawn]:
            text, negative, _ = service.prompts(prompt, negative_prompt, raw)
            requests = [
                ImageRequest(
                    prompt=text,
                    negative_prompt=negative,
                    seed=s,
                    steps=edit_steps,
                    guidance=guidance if guidance is not None else defaults.guidance,
                    width=width,
                    height=height,
                    strength=strength if strength is not None else defaults.edit_strength,
                )
                for s in seeds_for(seed, n)
            ]
            mask = openai_mask(mask_image) if mask_image is not None else None
            return service.draw(requests, init.convert("RGB"), cancel, prompt, mask)

        drawn = await run_blocking(request, job, limits.queue("image"))
        return service.respond(request, drawn, response_format)

    @router.get(
        "/v1/files/{name}",
        name="get_file",
        response_class=FileResponse,
        summary="Download a generated image (the `url` of an images response)",
        responses={
            200: {
                "content": {"image/png": {}},
                "description": "The PNG, with its parameters in its text.",
            },
            **error_responses(401, 404),
        },
    )
    async def get_file(name: str) -> FileResponse:
        """The PNG an images call wrote, by the name in its `url`."""
        path = service.files_dir / name
        if not re.match(FILE_NAME_PATTERN, name) or not path.is_file():
            raise ApiError("file-not-found", f"No generated file is called {name!r}.")
        return FileResponse(path, media_type="image/png")

    return router

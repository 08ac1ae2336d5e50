"""Builds the optional C extension `memsoak.profiler._memsoak_sampler` (the hook's sampled allocation tracker).

Everything else is in pyproject.toml. The extension is optional: without a C compiler or Python
headers the build says so in one line and the install goes on without it; the hook then falls back
to tracemalloc mode and says why (docs/hook.md, "Allocation tracking").
"""
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler at all (distutils raises before building)
            self._skip(error)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:  # compile or link failed: install without the sampler
            self._skip(error)

    @staticmethod
    def _skip(error: BaseException) -> None:
        print(f"memsoak: not building the allocation sampler ({type(error).__name__}: {error}); "
              "the hook will use tracemalloc mode", flush=True)


setup(
    ext_modules=[Extension("memsoak.profiler._memsoak_sampler", ["memsoak/profiler/_sampler.c"], optional=True,
                           extra_compile_args=["-O2", "-Wall"])],
    cmdclass={"build_ext": OptionalBuildExt},
)

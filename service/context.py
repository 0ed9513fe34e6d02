"""What a running service process holds: settings, database, the gait model and its gallery."""

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, make_session_factory
from service.gallery.index import IndexConfig
from service.gallery.servable import served_shape
from service.gallery.sync import Gallery
from service.recognition import Recognizer
from service.settings import Settings


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    recognizer: Recognizer
    gallery: Gallery
    gallery_loaded: bool = False

    @classmethod
    def create(cls, settings: Settings) -> "ServiceContext":
        """Connect and resolve the model; the gallery is loaded by :meth:`Gallery.rebuild` at start-up."""
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        recognizer = Recognizer(settings)
        index_config = IndexConfig(exact_max=settings.index_exact_max, scan_threads=settings.index_scan_threads)
        gallery = Gallery(
            sessions,
            recognizer.model_key,
            index_config,
            recognizer.spec.transform,
            recognizer.spec.calibration,
            served_shape(recognizer.spec, index_config),
        )
        return cls(settings, engine, sessions, recognizer, gallery)

    def load(self) -> None:
        """Build the gallery index from the database and load the gait model (start-up)."""
        self.gallery.rebuild()
        self.gallery_loaded = True
        self.recognizer.embedder  # noqa: B018 - loads (and on first use exports) the model now, not on the first request

    def close(self) -> None:
        self.engine.dispose()
